package sim

import "testing"

// BenchmarkReplayGenerated replays what generate --services 1000 writes:
// the simulator's own cost per scenario, and the allocations it plays per
// second (the README's replay figures are for 100,000 Services).
func BenchmarkReplayGenerated(b *testing.B) {
	sc, err := Generate(1000, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	allocations := 0
	for b.Loop() {
		res, err := Run(sc, Options{})
		if err != nil {
			b.Fatal(err)
		}
		allocations += res.Allocations
	}
	if allocations == 0 {
		b.Fatal("no allocations")
	}
	b.ReportMetric(float64(allocations)/b.Elapsed().Seconds(), "allocations/s")
}
