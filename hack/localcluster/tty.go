package main

import (
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// foreground makes this process the terminal's foreground process group,
// when stdin is a terminal, and returns what gives the terminal back.
// Ctrl-C then interrupts this process (and its control plane) only, not
// the make that started it: make, interrupted itself, would exit by the
// signal whatever this process does, and `make run` is to end with 0.
func foreground() (restore func()) {
	parent, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil {
		return func() {} // not a terminal: nothing to do
	}
	signal.Ignore(syscall.SIGTTOU) // a background group may set the foreground group only so
	if err := unix.Setpgid(0, 0); err != nil {
		return func() {}
	}
	if err := unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp()); err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, parent) }
}
