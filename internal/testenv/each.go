package testenv

import "sync"

// Each calls fn(0) .. fn(n-1), at most width of them at a time (as many
// clients in parallel), and returns once every call has returned.
func Each(n, width int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(width, 1))
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}
