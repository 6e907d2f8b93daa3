package controller_test

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// logLines collects a controller's log lines at the default verbosity
// (klog level 0: what an operator sees without -v).
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, strings.TrimSpace(prefix+" "+args))
		l.mu.Unlock()
	}, funcr.Options{Verbosity: 0})
}

// matching returns the lines that contain every one of substrs.
func (l *logLines) matching(substrs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// waitLog waits for a log line that contains every one of substrs.
func (h *harness) waitLog(substrs ...string) string {
	h.t.Helper()
	var found string
	h.eventually(15*time.Second, fmt.Sprintf("a log line with %q", substrs), func() (bool, string) {
		if m := h.logs.matching(substrs...); len(m) > 0 {
			found = m[0]
			return true, ""
		}
		h.logs.mu.Lock()
		defer h.logs.mu.Unlock()
		return false, fmt.Sprintf("%d lines: %q", len(h.logs.lines), h.logs.lines)
	})
	return found
}
