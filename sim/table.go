package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints a run as a readable table: step, actor, what, Service,
// addresses, event; then the outcome.
func WriteTable(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "scenario %s (seed %d)\n", r.Scenario, r.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTOR\tWHAT\tSERVICE\tADDRESSES\tEVENT")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", row.Step, row.Actor, row.What, row.Service, row.Addresses, row.Event)
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

// WriteJSON prints a run as JSON.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
