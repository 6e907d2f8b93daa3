package engine

import (
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestUIDsAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   string
		want    map[string]string
		wantErr bool
	}{
		{name: "empty", value: ""},
		{name: "blank", value: "  "},
		{name: "owner only", value: "ns/a=u1", want: map[string]string{"ns/a": "u1"}},
		{name: "owner and sharers, spaces", value: "ns/a=u1, ns/b=u2", want: map[string]string{"ns/a": "u1", "ns/b": "u2"}},
		{name: "same entry twice", value: "ns/a=u1,ns/a=u1", want: map[string]string{"ns/a": "u1"}},
		{name: "two UIDs for one Service", value: "ns/a=u1,ns/a=u2", wantErr: true},
		{name: "no UID", value: "ns/a=", wantErr: true},
		{name: "no =", value: "ns/a", wantErr: true},
		{name: "no namespace", value: "a=u1", wantErr: true},
		{name: "empty name", value: "ns/=u1", wantErr: true},
		{name: "too many slashes", value: "ns/a/b=u1", wantErr: true},
		{name: "one bad entry spoils all", value: "ns/a=u1,garbage", wantErr: true},
		{name: "trailing comma", value: "ns/a=u1,", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUIDs(tc.value)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseUIDs(%q) error = %v, want error %v", tc.value, err, tc.wantErr)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("ParseUIDs(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}

func TestFormatUIDsRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		name    string
		holders []string
		uids    map[string]string
		want    string
	}{
		{name: "none known", holders: []string{"ns/a"}, want: ""},
		{name: "owner", holders: []string{"ns/a"}, uids: map[string]string{"ns/a": "u1"}, want: "ns/a=u1"},
		{name: "holders' order, unknown left out", holders: []string{"ns/b", "ns/c", "ns/a"},
			uids: map[string]string{"ns/a": "u1", "ns/b": "u2", "ns/x": "u9"}, want: "ns/b=u2,ns/a=u1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FormatUIDs(tc.holders, tc.uids)
			if got != tc.want {
				t.Fatalf("FormatUIDs = %q, want %q", got, tc.want)
			}
			back, err := ParseUIDs(got)
			if err != nil {
				t.Fatalf("ParseUIDs(%q): %v", got, err)
			}
			for _, h := range tc.holders {
				if back[h] != tc.uids[h] {
					t.Fatalf("%s: read back %q, want %q", h, back[h], tc.uids[h])
				}
			}
		})
	}
}

func FuzzParseUIDs(f *testing.F) {
	for _, s := range []string{"", "ns/a=u1", "ns/a=u1,ns/b=u2", "ns/a", "a=b=c", ",,", "ns/a=u1,ns/a=u2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		uids, err := ParseUIDs(v)
		if err != nil {
			return
		}
		var holders []string
		for h := range uids {
			holders = append(holders, h)
		}
		back, err := ParseUIDs(FormatUIDs(holders, uids))
		if err != nil || !maps.Equal(back, uids) {
			t.Fatalf("ParseUIDs(%q) = %v; formatted and read again: %v, %v", v, uids, back, err)
		}
	})
}

// madeFor judges by the UID a claim records for the Service's name, and
// only without one by the creation times (to the second, the doubt
// going to the Service).
func TestMadeFor(t *testing.T) {
	claimed := time.Date(2026, 1, 1, 10, 0, 0, 500_000_000, time.UTC)
	svc := func(uid string, created time.Time) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: types.UID(uid), CreationTimestamp: metav1.NewTime(created)}}
	}
	withUID := Claim{Owner: "ns/a", Created: claimed, UIDs: map[string]string{"ns/a": "u1"}}
	legacy := Claim{Owner: "ns/a", Created: claimed}
	otherRecorded := Claim{Owner: "ns/a", Sharers: []string{"ns/b"}, Created: claimed, UIDs: map[string]string{"ns/b": "u2"}}
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		c    Claim
		want bool
	}{
		{name: "its UID", svc: svc("u1", claimed.Add(-time.Minute)), c: withUID, want: true},
		{name: "its UID, created later (clock skew)", svc: svc("u1", claimed.Add(time.Hour)), c: withUID, want: true},
		{name: "another UID, same second", svc: svc("u2", claimed), c: withUID, want: false},
		{name: "another UID, created before", svc: svc("u2", claimed.Add(-time.Minute)), c: withUID, want: false},
		{name: "no UID recorded, created before", svc: svc("u2", claimed.Add(-time.Minute)), c: legacy, want: true},
		{name: "no UID recorded, same second", svc: svc("u2", claimed.Add(400*time.Millisecond)), c: legacy, want: true},
		{name: "no UID recorded, next second", svc: svc("u2", claimed.Add(600*time.Millisecond)), c: legacy, want: false},
		{name: "only another holder's UID recorded", svc: svc("u2", claimed), c: otherRecorded, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (&Engine{}).madeFor(tc.svc, tc.c); got != tc.want {
				t.Fatalf("madeFor = %v, want %v", got, tc.want)
			}
		})
	}
}
