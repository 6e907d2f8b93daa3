package controller

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/cache"
)

func TestParseSharers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"ns/a", []string{"ns/a"}},
		{"ns/a,ns/b", []string{"ns/a", "ns/b"}},
		{" ns/a , ns/b ,", []string{"ns/a", "ns/b"}},
		{"ns/a,ns/a", []string{"ns/a"}},
		{"a,/b,ns/,ns/a/b,ns/c", []string{"ns/c"}},
	} {
		if got := parseSharers(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("parseSharers(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseSharers: whatever the annotation says, every sharer read is a
// "namespace/name" key, named once, and writing them back reads the same.
func FuzzParseSharers(f *testing.F) {
	for _, s := range []string{"", "ns/a,ns/b", " ns/a , ,ns/a", "a/b/c,/x,y/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := parseSharers(v)
		for i, s := range got {
			ns, name, err := cache.SplitMetaNamespaceKey(s)
			if err != nil || ns == "" || name == "" {
				t.Fatalf("%q: sharer %q is no namespace/name key", v, s)
			}
			if slices.Index(got, s) != i {
				t.Fatalf("%q: sharer %q twice", v, s)
			}
		}
		if again := parseSharers(strings.Join(got, ",")); !slices.Equal(again, got) {
			t.Fatalf("%q: read %q, written back and read again %q", v, got, again)
		}
	})
}
