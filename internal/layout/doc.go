// Package layout holds the tests that keep the repository's layout honest:
// the pure packages (the allocator, the decision, the sync engine and the
// simulator) never depend on client-go, so that nothing in them can talk
// to an API server.
package layout
