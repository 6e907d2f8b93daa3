package testenv

import (
	"sync"
	"testing"
	"time"
)

func TestEachCallsEveryIndexOnceWithinTheWidth(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	running, most := 0, 0
	Each(50, 4, func(i int) {
		mu.Lock()
		seen[i]++
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(time.Millisecond) // lets the calls overlap
		mu.Lock()
		running--
		mu.Unlock()
	})
	if len(seen) != 50 {
		t.Fatalf("%d indexes called, want 50", len(seen))
	}
	for i, c := range seen {
		if c != 1 {
			t.Errorf("index %d called %d times", i, c)
		}
	}
	if most > 4 || most < 2 {
		t.Errorf("%d calls at once, want 2 to 4", most)
	}
}
