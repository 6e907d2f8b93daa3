package sim

import (
	"fmt"
	"strings"

	"github.com/kvcp-dev/kube-vip-cloud-provider/controller/engine"
	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/mutant"
)

// Options change how a scenario runs.
type Options struct {
	// Seed overrides the scenario's seed when not zero.
	Seed int64
	// Flaws run a deliberately broken controller, only for showing that
	// the model finds the bugs that follow: only in a build with the tag
	// mutants (package mutant); empty in any other.
	Flaws mutant.Flaws
	// NoClaims runs the controllers without address claims, only for
	// showing that two active controllers then give one address to two
	// Services.
	NoClaims bool
	// CheckOnlyAtEnd skips the per-step invariant checks that are not
	// incremental (the quiet checks), for very large generated runs.
	CheckOnlyAtEnd bool
	// MaxWork bounds the controller's work items per settle (default
	// 100 + 20 per Service).
	MaxWork int
	// watch, when set, is told what every replica's engine does too, after
	// the simulator's own checks (plan reads the engine's outcomes so).
	watch engine.Observer
}

// Row is one line of the trace.
type Row struct {
	Step int
	// Actor is "user", "controller-N" or "expect".
	Actor   string
	What    string
	Service string
	// Addresses the Service carries after the row, comma-separated.
	Addresses string
	// Detail is what a user's step set: the config data, the lag, the
	// leader.
	Detail string
	// Reason and Message of the Event recorded; a Message alone is a note
	// of the simulator's (an injected conflict).
	Reason  string
	Message string
}

// Result is the outcome of a run.
type Result struct {
	Scenario string
	Seed     int64
	Rows     []Row
	// Writes counts the controller's successful writes; Allocations those
	// that gave a Service new addresses.
	Writes      int
	Allocations int
	Services    int
	// Failure is the first failed expect or broken invariant, or nil.
	Failure error
}

// ExpectError is a failed expect step.
type ExpectError struct {
	Step    int
	Service string
	Message string
}

// Error implements error.
func (e *ExpectError) Error() string {
	return fmt.Sprintf("step %d: expect %s: %s", e.Step, e.Service, e.Message)
}

// InvariantError is a broken invariant: it names the step, the seed and
// the Services involved.
type InvariantError struct {
	Step     int
	Seed     int64
	Services []string
	Message  string
}

// Error implements error.
func (e *InvariantError) Error() string {
	return fmt.Sprintf("step %d (seed %d): invariant broken: %s [%s]", e.Step, e.Seed, e.Message, strings.Join(e.Services, ", "))
}
