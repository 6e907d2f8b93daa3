package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints a run as a readable table: step (0 is the starting
// config), actor, what, Service, the addresses it carries, the detail of
// the row (what a user's step set, the ConfigMap key an InvalidConfig is
// about), the Event; then the outcome. It prints nothing that varies
// between two runs of the same scenario.
func WriteTable(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "scenario %s (seed %d)\n", r.Scenario, r.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTOR\tWHAT\tSERVICE\tADDRESSES\tDETAIL\tEVENT")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Step, row.Actor, row.What, row.Service, row.Addresses, row.Detail, row.event())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Failure != nil {
		_, err := fmt.Fprintf(w, "FAIL: %v\n", r.Failure)
		return err
	}
	_, err := fmt.Fprintf(w, "ok: %d Services, %d writes, %d allocations\n", r.Services, r.Writes, r.Allocations)
	return err
}

// event is the row's EVENT column: "Reason: message".
func (r Row) event() string {
	switch {
	case r.Reason != "" && r.Message != "":
		return r.Reason + ": " + r.Message
	case r.Reason != "":
		return r.Reason
	}
	return r.Message
}

// Report is the JSON form of one replayed file. It holds nothing that
// varies between two runs of the same scenario (no wall time).
type Report struct {
	File     string `json:"file,omitempty"`
	Scenario string `json:"scenario,omitempty"`
	Seed     int64  `json:"seed,omitempty"`
	// OK is false when an expect failed, an invariant broke, or the file
	// is not a valid scenario; Failure then says why.
	OK      bool   `json:"ok"`
	Failure string `json:"failure,omitempty"`
	// FailureKind is "expect", "invariant" or "invalid" (the scenario
	// itself is wrong: it cannot be read, or a step cannot be played).
	FailureKind string `json:"failureKind,omitempty"`
	// FailedStep is the step that failed, when there is one.
	FailedStep  int         `json:"failedStep,omitempty"`
	Rows        []ReportRow `json:"rows"`
	Writes      int         `json:"writes"`
	Allocations int         `json:"allocations"`
	Services    int         `json:"services"`
}

// ReportRow is one row of the trace in a Report.
type ReportRow struct {
	Step    int    `json:"step"`
	Actor   string `json:"actor"`
	What    string `json:"what"`
	Service string `json:"service,omitempty"`
	// Addresses the Service carries after the row (never null).
	Addresses []string `json:"addresses"`
	Detail    string   `json:"detail,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Message   string   `json:"message,omitempty"`
}

// NewReport makes the Report of a run of the scenario file named file.
// With res nil (the file could not be read or played), err says why.
func NewReport(file string, res *Result, err error) Report {
	rep := Report{File: file, OK: err == nil, Rows: []ReportRow{}}
	if res != nil {
		rep.Scenario, rep.Seed = res.Scenario, res.Seed
		rep.Writes, rep.Allocations, rep.Services = res.Writes, res.Allocations, res.Services
		for _, r := range res.Rows {
			addrs := []string{}
			if r.Addresses != "" {
				addrs = strings.Split(r.Addresses, ",")
			}
			rep.Rows = append(rep.Rows, ReportRow{Step: r.Step, Actor: r.Actor, What: r.What, Service: r.Service,
				Addresses: addrs, Detail: r.Detail, Reason: r.Reason, Message: r.Message})
		}
	}
	if err == nil {
		return rep
	}
	rep.Failure = err.Error()
	var ee *ExpectError
	var ie *InvariantError
	switch {
	case errors.As(err, &ee):
		rep.FailureKind, rep.FailedStep = "expect", ee.Step
	case errors.As(err, &ie):
		rep.FailureKind, rep.FailedStep = "invariant", ie.Step
	default:
		rep.FailureKind = "invalid"
	}
	return rep
}

// WriteJSON prints reports as one JSON value: the report itself when
// single is set, else an array of them.
func WriteJSON(w io.Writer, reports []Report, single bool) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if single && len(reports) == 1 {
		return enc.Encode(reports[0])
	}
	if reports == nil {
		reports = []Report{}
	}
	return enc.Encode(reports)
}
