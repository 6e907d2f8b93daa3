package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/var/run/netns"

// netnsPrefix starts the name of every network namespace the suite makes;
// the pid of the test process that made it follows ("kvcp-kv1234").
const netnsPrefix = "kvcp-"

var netnsName = regexp.MustCompile(`^` + netnsPrefix + `(?:kv|cl)([0-9]+)$`)

// sweepStaleNetns deletes the namespaces of earlier runs whose test process
// is gone (it was killed before it could tear down).
func sweepStaleNetns() {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := netnsName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", m[1])); err == nil {
			continue // its run is still going
		}
		if err := run("ip", "netns", "del", e.Name()); err == nil {
			fmt.Printf("e2e: deleted network namespace %s left by an earlier run (pid %d)\n", e.Name(), pid)
		}
	}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// inNetns runs fn on an OS thread switched into the named network
// namespace. A socket made in fn stays in that namespace after it returns.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join(netnsDir, ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays in the wrong namespace: leave it locked, so
			// the runtime retires it with this goroutine.
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// listenIn opens a TCP listener on 127.0.0.1 inside netns ns.
func listenIn(ns string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	return ln, err
}

// addrsOf lists the addresses on interface ifname in netns ns.
func addrsOf(ns, ifname string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				out = append(out, p.Addr())
			}
		}
		return nil
	})
	return out, err
}

// macOf returns the hardware address of ifname in netns ns.
func macOf(ns, ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	})
	return mac, err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// arpWhoHas sends one ARP request for target out of ifname (with source
// address src) in netns ns and returns the hardware address of the first
// reply, waiting at most timeout.
func arpWhoHas(ns, ifname string, src, target netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	var fd int
	var ifi *net.Interface
	err := inNetns(ns, func() (err error) {
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ARP socket in %s: %w", ns, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
		return nil, err
	}
	// Ethernet header, then the ARP request (RFC 826).
	pkt := make([]byte, 0, 42)
	pkt = append(pkt, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	pkt = append(pkt, ifi.HardwareAddr...)
	pkt = binary.BigEndian.AppendUint16(pkt, unix.ETH_P_ARP)
	pkt = binary.BigEndian.AppendUint16(pkt, 1)      // Ethernet
	pkt = binary.BigEndian.AppendUint16(pkt, 0x0800) // IPv4
	pkt = append(pkt, 6, 4)
	pkt = binary.BigEndian.AppendUint16(pkt, 1) // request
	pkt = append(pkt, ifi.HardwareAddr...)
	pkt = append(pkt, src.AsSlice()...)
	pkt = append(pkt, 0, 0, 0, 0, 0, 0)
	pkt = append(pkt, target.AsSlice()...)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(fd, pkt, 0, to); err != nil {
		return nil, fmt.Errorf("send ARP request: %w", err)
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("no ARP reply for %s on %s within %v", target, ifname, timeout)
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return nil, err
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, err
		}
		p := buf[:n]
		// A reply (opcode 2) whose sender protocol address is target.
		if n >= 42 && binary.BigEndian.Uint16(p[12:14]) == unix.ETH_P_ARP && binary.BigEndian.Uint16(p[20:22]) == 2 &&
			bytes.Equal(p[28:32], target.AsSlice()) {
			return net.HardwareAddr(bytes.Clone(p[22:28])), nil
		}
	}
}

// pingFrom sends one ICMP echo request (ICMPv6 for an IPv6 target) from
// inside netns ns to target and waits at most timeout for its reply, as
// `ping -c1` would, without needing the ping command.
func pingFrom(ns string, target netip.Addr, timeout time.Duration) error {
	network, local, proto := "ip4:icmp", "0.0.0.0", 1 // IANA protocol numbers
	var request, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if target.Is6() {
		network, local, proto = "ip6:ipv6-icmp", "::", 58
		request, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var c *icmp.PacketConn
	err := inNetns(ns, func() (err error) {
		c, err = icmp.ListenPacket(network, local)
		return err
	})
	if err != nil {
		return fmt.Errorf("ICMP socket in %s: %w", ns, err)
	}
	defer c.Close()
	// A raw socket sees every echo reply in the namespace: ours carries
	// this id and sequence number.
	id, seq := os.Getpid()&0xffff, rand.IntN(1<<16)
	msg := icmp.Message{Type: request, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("kvcp-e2e")}}
	raw, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(raw, &net.IPAddr{IP: target.AsSlice()}); err != nil {
		return fmt.Errorf("send ICMP echo to %s from %s: %w", target, ns, err)
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("no ICMP echo reply from %s within %v: %w", target, timeout, err)
		}
		from, ok := peer.(*net.IPAddr)
		if !ok || !from.IP.Equal(target.AsSlice()) {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
			return nil
		}
	}
}
