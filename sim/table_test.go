package sim

import (
	"strings"
	"testing"
)

// TestTableGivesDetailsTheirOwnColumn: what a user's step set and the
// ConfigMap key of an InvalidConfig are under DETAIL, never under
// ADDRESSES; addresses stay under ADDRESSES.
func TestTableGivesDetailsTheirOwnColumn(t *testing.T) {
	res := replayText(t, `
config: {cidr-global: 10.0.0.0/30, cidr-x: 10.0.0.9}
steps:
  - replicas: 2
  - create: {service: default/a}
  - expect: {service: default/a, address: 10.0.0.1}
`)
	var b strings.Builder
	if err := WriteTable(&b, res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	header := lines[1]
	addrCol, detailCol, eventCol := strings.Index(header, "ADDRESSES"), strings.Index(header, "DETAIL"), strings.Index(header, "EVENT")
	if addrCol < 0 || detailCol < addrCol || eventCol < detailCol {
		t.Fatalf("header %q: want ADDRESSES, DETAIL, EVENT in that order", header)
	}
	// cell returns the text of line from column at up to the next column.
	cell := func(line string, at, end int) string {
		if len(line) <= at {
			return ""
		}
		return strings.TrimSpace(line[at:min(end, len(line))])
	}
	want := map[string][2]string{ // a row's first words -> its ADDRESSES and DETAIL
		"0     user          config":   {"", "cidr-global=10.0.0.0/30 cidr-x=10.0.0.9"},
		"0     controller    config":   {"", "cidr-x"},
		"1     user          replicas": {"", "2, leader is controller-0"},
		"3     expect        ok":       {"10.0.0.1", ""},
	}
	found := 0
	for _, line := range lines[2:] {
		for prefix, w := range want {
			if !strings.HasPrefix(line, prefix) {
				continue
			}
			found++
			if a, d := cell(line, addrCol, detailCol), cell(line, detailCol, eventCol); a != w[0] || d != w[1] {
				t.Errorf("row %q: ADDRESSES %q, DETAIL %q; want %q and %q", line, a, d, w[0], w[1])
			}
		}
	}
	if found != len(want) {
		t.Fatalf("found %d of the %d rows looked for in\n%s", found, len(want), b.String())
	}
}
