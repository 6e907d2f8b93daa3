package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master, and the name of its slave.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("SKIPPED LOUDLY: no pseudo-terminal here (/dev/ptmx: %v): Ctrl-C under make is not checked", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n)
}

// TestCtrlCEndsMakeRunWithZero: make run in a terminal, Ctrl-C, and make
// exits 0 without "make: *** ... Interrupt" (issue 18 item 4). The recipe
// is make run's (the binary, run by make) with this test's directory and
// ports. Without foreground (the binary taking the terminal's foreground
// process group), make, interrupted too, dies by SIGINT and prints
// "make: *** [Makefile:2: run] Interrupt".
func TestCtrlCEndsMakeRunWithZero(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("SKIPPED LOUDLY: make is not installed (%v): Ctrl-C under make is not checked", err)
	}
	dir := t.TempDir()
	opts := testOptions(t, dir)
	makefile := filepath.Join(dir, "Makefile")
	recipe := fmt.Sprintf("run:\n\t%s --dir=%s --config=%s --bin=%s --metrics-bind-address=%s --health-probe-bind-address=%s\n",
		filepath.Join(binDir, "localcluster"), opts.dir, mustAbs(t, opts.configMap), binDir, opts.metricsAddr, opts.healthAddr)
	if err := os.WriteFile(makefile, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	master, slaveName := openPTY(t)
	defer master.Close()
	slave, err := os.OpenFile(slaveName, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-f", makefile, "run")
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n]) // only this goroutine writes; read after it ends
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The banner's last line is printed once the controller is ready.
	ready := filepath.Join(opts.dir, "controller.log")
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil && readyz(opts.healthAddr) {
			break
		}
		select {
		case err := <-exited:
			<-read
			t.Fatalf("make run ended before Ctrl-C: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatal("make run's controller never became ready")
		}
	}
	time.Sleep(500 * time.Millisecond)                    // the banner is printed right after ready
	if _, err := master.Write([]byte{0x03}); err != nil { // Ctrl-C, as the terminal sends it
		t.Fatal(err)
	}
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("make run did not end within a minute of Ctrl-C")
	}
	master.Close()
	<-read
	printed := out.String()
	if waitErr != nil {
		t.Errorf("make run ended with %v after Ctrl-C, want exit 0:\n%s", waitErr, printed)
	}
	for _, bad := range []string{"make: ***", "Interrupt", "Error"} {
		if strings.Contains(printed, bad) {
			t.Errorf("make run printed %q after Ctrl-C:\n%s", bad, printed)
		}
	}
	if !strings.Contains(printed, "Stopping.") {
		t.Errorf("make run did not say it stopped:\n%s", printed)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// readyz reports whether the controller's /readyz answers 200.
func readyz(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
