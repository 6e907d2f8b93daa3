package allocator

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// The ConfigMap keys, as the existing kube-vip-cloud-provider spells them.
// Per-namespace keys end in the namespace; "global" applies to every
// namespace without a key of its own.
const (
	KeyCIDRPrefix       = "cidr-"
	KeyRangePrefix      = "range-"
	KeyAllowSharePrefix = "allow-share-"
	KeyInterfacePrefix  = "interface-"
	KeySearchOrder      = "search-order"
	KeySkipEndIPs       = "skip-end-ips-in-cidr"
)

// KeyError reports a malformed ConfigMap value. It names the key, the whole
// value and the entry that was wrong.
type KeyError struct {
	Key   string
	Value string
	// Entry is the offending comma-separated entry, when one is to blame.
	Entry string
	Err   error
	// Kept is the last good value that keeps serving instead, if any.
	Kept *string
}

// Error implements error.
func (e *KeyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "parse %s=%q", e.Key, e.Value)
	if e.Entry != "" {
		fmt.Fprintf(&b, ": entry %q", e.Entry)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Kept != nil {
		fmt.Fprintf(&b, " (keeping the last good value %q)", *e.Kept)
	} else {
		b.WriteString(" (key ignored)")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }

// Config is the parsed kubevip ConfigMap. It is immutable and safe to share
// between goroutines.
type Config struct {
	pools      map[string]*Pool
	allowShare map[string]bool
	interfaces map[string]string
	desc       bool
	skipEnds   bool
	// accepted holds the raw value in force for each key (a good new value,
	// or the last good one kept in place of a bad one).
	accepted map[string]string
	// notices are what the data last parsed says that is not an error
	// but probably not what was meant; missing says why there is no data
	// at all (see Missing).
	notices []Notice
	missing string
}

// NoticeKind says what a Notice is about.
type NoticeKind string

// The kinds of Notice.
const (
	// NoticeUnknownKey: a key the controller does not understand; it is
	// ignored (a typo, most likely: cidrglobal, serach-order).
	NoticeUnknownKey NoticeKind = "UnknownKey"
	// NoticeHostBits: a CIDR entry with host bits set (192.168.0.220/29).
	// As in the existing provider it is read as the network it falls in
	// (192.168.0.216/29), which may not be what was meant.
	NoticeHostBits NoticeKind = "HostBits"
)

// Notice is something about a ConfigMap key that is not an error, yet
// probably not what was meant: a key the controller ignores, or a CIDR
// read as a wider range than it looks. The key keeps serving as parsed.
type Notice struct {
	Kind NoticeKind
	Key  string
	// Entry is the entry concerned (NoticeHostBits).
	Entry string
	// Meant is what the key or entry is taken for: the masked CIDR and its
	// range (NoticeHostBits), or the known key it is probably a misspelling
	// of, "" when none is close (NoticeUnknownKey).
	Meant string
}

// String says what the notice is about, naming the key (and entry).
func (n Notice) String() string {
	switch n.Kind {
	case NoticeUnknownKey:
		msg := fmt.Sprintf("key %q is not one kube-vip-cloud-provider understands: it is ignored", n.Key)
		if n.Meant != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", n.Meant)
		}
		return msg
	case NoticeHostBits:
		return fmt.Sprintf("%s: entry %q has host bits set: it is read as %s", n.Key, n.Entry, n.Meant)
	}
	return fmt.Sprintf("%s: %s", n.Key, n.Meant)
}

// Parse turns the ConfigMap's data into a Config. A malformed value
// invalidates only its own key: the returned error (an errors.Join of
// *KeyError, one per bad key) names each, and the Config is usable anyway.
// When last is not nil, a bad key keeps the value it had in last, so that
// a typo never takes addresses away from a working pool.
func Parse(data map[string]string, last *Config) (*Config, error) {
	c := &Config{
		pools:      map[string]*Pool{},
		allowShare: map[string]bool{},
		interfaces: map[string]string{},
		accepted:   map[string]string{},
	}
	var errs []error
	// pending collects the notices of the value being parsed: kept only
	// when it is accepted (a last good value kept in its place was told
	// of when it was new).
	var pending []Notice
	// accept parses value with fn, falling back to last's value of key.
	accept := func(key, value string, fn func(string) error) {
		pending = nil
		err := fn(value)
		if err == nil {
			c.accepted[key] = value
			c.notices = append(c.notices, pending...)
			return
		}
		ke := &KeyError{Key: key, Value: value, Err: err}
		var ee *entryError
		if errors.As(err, &ee) {
			ke.Entry, ke.Err = ee.entry, ee.err
		}
		if last != nil {
			if old, ok := last.accepted[key]; ok && old != value && fn(old) == nil {
				ke.Kept = &old
				c.accepted[key] = old
			}
		}
		errs = append(errs, ke)
	}

	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Keys whose value did not change go first: when two keys of one pool
	// cannot be combined (DHCP with addresses), the key that changed is
	// the one rejected, and the unchanged one keeps serving.
	if last != nil {
		sort.SliceStable(keys, func(i, j int) bool {
			return unchanged(last, keys[i], data[keys[i]]) && !unchanged(last, keys[j], data[keys[j]])
		})
	}

	// Global options first: skip-end-ips-in-cidr changes how CIDRs parse.
	if v, ok := data[KeySkipEndIPs]; ok {
		accept(KeySkipEndIPs, v, func(s string) (err error) {
			c.skipEnds, err = parseBool(s)
			return err
		})
	}
	if v, ok := data[KeySearchOrder]; ok {
		accept(KeySearchOrder, v, func(s string) error {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "desc":
				c.desc = true
			case "asc", "":
				c.desc = false
			default:
				return fmt.Errorf(`must be "asc" or "desc"`)
			}
			return nil
		})
	}

	builders := map[string]*poolBuilder{}
	builder := func(name string) *poolBuilder {
		b := builders[name]
		if b == nil {
			b = &poolBuilder{}
			builders[name] = b
		}
		return b
	}
	for _, k := range keys {
		v := data[k]
		switch {
		case strings.HasPrefix(k, KeyCIDRPrefix) && len(k) > len(KeyCIDRPrefix),
			strings.HasPrefix(k, KeyRangePrefix) && len(k) > len(KeyRangePrefix):
			_, name, _ := strings.Cut(k, "-")
			b := builder(name)
			b.keys = append(b.keys, k)
			accept(k, v, func(s string) error {
				masked, err := b.addEntries(s, c.skipEnds)
				for _, m := range masked {
					pending = append(pending, Notice{Kind: NoticeHostBits, Key: k, Entry: m.entry, Meant: m.meant})
				}
				return err
			})
		case strings.HasPrefix(k, KeyAllowSharePrefix) && len(k) > len(KeyAllowSharePrefix):
			name := k[len(KeyAllowSharePrefix):]
			accept(k, v, func(s string) error {
				b, err := parseBool(s)
				if err == nil {
					c.allowShare[name] = b
				}
				return err
			})
		case strings.HasPrefix(k, KeyInterfacePrefix) && len(k) > len(KeyInterfacePrefix):
			name := k[len(KeyInterfacePrefix):]
			accept(k, v, func(s string) error {
				s = strings.TrimSpace(s)
				if s == "" || strings.ContainsAny(s, " \t\n/,") || len(s) > 15 {
					return fmt.Errorf("not an interface name")
				}
				c.interfaces[name] = s
				return nil
			})
		case k == KeySearchOrder || k == KeySkipEndIPs:
			// parsed above
		default:
			c.notices = append(c.notices, Notice{Kind: NoticeUnknownKey, Key: k, Meant: knownKeyLike(k)})
		}
	}
	slices.SortStableFunc(c.notices, func(a, b Notice) int { return strings.Compare(a.Key, b.Key) })
	for name, b := range builders {
		c.pools[name] = b.build(name, errs)
	}
	return c, errors.Join(errs...)
}

// Missing returns a Config without any pool because there is no ConfigMap
// at all; why (e.g. "ConfigMap kube-system/kubevip not found") is what the
// NoPool error of every automatic allocation says.
func Missing(why string) *Config {
	c, _ := Parse(nil, nil)
	c.missing = why
	return c
}

// Absent returns why there is no ConfigMap at all (see Missing), or "".
func (c *Config) Absent() string { return c.missing }

// Notices returns what the data last parsed says that is not an error but
// probably not what was meant (unknown keys, CIDRs with host bits), sorted
// by key. A key whose new value is malformed has none: the last good value
// kept in its place was told of when it was new.
func (c *Config) Notices() []Notice { return slices.Clone(c.notices) }

// keyPrefixes are the prefixes of the per-namespace keys.
var keyPrefixes = [...]string{KeyCIDRPrefix, KeyRangePrefix, KeyAllowSharePrefix, KeyInterfacePrefix}

// knownKey reports whether the controller understands key.
func knownKey(key string) bool {
	if key == KeySearchOrder || key == KeySkipEndIPs {
		return true
	}
	for _, p := range keyPrefixes {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return false
}

// knownKeyLike returns the known key that key is most likely a typo of, or
// "": the same but for case, "_" for "-", two letters swapped in a fixed
// key or a prefix (serach-order, cdir-global, allow_share-x), or the dash
// after a prefix missing (cidrglobal).
func knownKeyLike(key string) string {
	n := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(key), "_", "-"))
	var cands []string
	for _, e := range []string{KeySearchOrder, KeySkipEndIPs} {
		if sameLetters(n, e) {
			cands = append(cands, e)
		}
	}
	for _, p := range keyPrefixes {
		if len(n) > len(p) && sameLetters(n[:len(p)], p) {
			cands = append(cands, p+n[len(p):])
		}
		if stem := p[:len(p)-1]; strings.HasPrefix(n, stem) && len(n) > len(stem) && n[len(stem)] != '-' {
			cands = append(cands, p+n[len(stem):])
		}
	}
	for _, c := range cands {
		if c != key && knownKey(c) {
			return c
		}
	}
	return ""
}

// sameLetters reports whether a and b have the same letters, maybe in
// another order.
func sameLetters(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := []byte(a), []byte(b)
	slices.Sort(x)
	slices.Sort(y)
	return string(x) == string(y)
}

// unchanged reports whether key had value in last, and it was accepted.
func unchanged(last *Config, key, value string) bool {
	v, ok := last.accepted[key]
	return ok && v == value
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, fmt.Errorf("not a boolean (true or false)")
	}
	return b, nil
}

// entryError blames one entry of a comma-separated value.
type entryError struct {
	entry string
	err   error
}

// Error implements error.
func (e *entryError) Error() string { return fmt.Sprintf("entry %q: %v", e.entry, e.err) }

// poolBuilder collects the entries of a namespace's cidr and range keys.
type poolBuilder struct {
	b     netipx.IPSetBuilder
	good  int // how many of the pool's keys parsed
	dhcp  bool
	other bool // holds an entry that is not the DHCP marker
	// keys are the pool's cidr-* and range-* keys.
	keys []string
}

// splitEntries splits a comma-separated value, trimming spaces and dropping
// empty entries; a value with no entries at all is an error.
func splitEntries(s string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no entries")
	}
	return out, nil
}

var dhcpMarker = netip.MustParsePrefix("0.0.0.0/32")

// maskedEntry is a CIDR entry with host bits set, and what it is read as.
type maskedEntry struct{ entry, meant string }

// addEntries adds the entries of one cidr-* or range-* value; nothing is
// added unless every entry parses. As in the existing provider, the form of
// an entry decides how it is read, not the key: one with a "/" is a CIDR
// (skipEnds leaves out the network and broadcast address of an IPv4 CIDR
// of /30 or wider), one with a "-" is a range FROM-TO. So range-x:
// 10.0.0.0/24 and cidr-x: 10.0.0.1-10.0.0.9 both work. A CIDR with host
// bits set is masked, as in the existing provider, and returned in masked.
func (pb *poolBuilder) addEntries(value string, skipEnds bool) (masked []maskedEntry, err error) {
	entries, err := splitEntries(value)
	if err != nil {
		return nil, err
	}
	var rs []netipx.IPRange
	dhcp := false
	for _, e := range entries {
		if !strings.Contains(e, "/") && strings.Contains(e, "-") {
			r, err := parseRange(e)
			if err != nil {
				return nil, &entryError{e, err}
			}
			if r.From() == netip.IPv4Unspecified() && r.To() == r.From() {
				return nil, &entryError{e, fmt.Errorf("not DHCP: for DHCP, write %s", dhcpMarker)}
			}
			rs = append(rs, r)
			continue
		}
		p, err := netip.ParsePrefix(e)
		if err != nil {
			if a, aerr := netip.ParseAddr(e); aerr == nil {
				// A bare address: say how to write it.
				a = a.WithZone("").Unmap()
				return nil, &entryError{e, fmt.Errorf("not a CIDR (ADDRESS/BITS) or a range (FROM-TO): for the one address, write %s", netip.PrefixFrom(a, a.BitLen()))}
			}
			return nil, &entryError{e, fmt.Errorf("not a CIDR (ADDRESS/BITS) or a range (FROM-TO)")}
		}
		if p.Addr().Is4In6() {
			return nil, &entryError{e, fmt.Errorf("IPv4-mapped IPv6 prefix: write the IPv4 prefix")}
		}
		hostBits := p.Masked() != p
		p = p.Masked()
		if p == dhcpMarker {
			dhcp = true
			continue
		}
		r := netipx.RangeOfPrefix(p)
		if skipEnds && p.Addr().Is4() && p.Bits() <= 30 {
			r = netipx.IPRangeFrom(r.From().Next(), r.To().Prev())
		}
		if hostBits && !slices.ContainsFunc(masked, func(m maskedEntry) bool { return m.entry == e }) {
			meant := fmt.Sprintf("%s, that is %s-%s", p, r.From(), r.To())
			if skipEnds && p.Addr().Is4() && p.Bits() <= 30 {
				meant += " (skip-end-ips-in-cidr)"
			}
			masked = append(masked, maskedEntry{e, meant})
		}
		rs = append(rs, r)
	}
	if dhcp && (len(rs) > 0 || pb.other) || (!dhcp && pb.dhcp) {
		return nil, fmt.Errorf("0.0.0.0/32 (DHCP) cannot be combined with other addresses")
	}
	for _, r := range rs {
		pb.b.AddRange(r)
	}
	pb.dhcp = pb.dhcp || dhcp
	pb.other = pb.other || len(rs) > 0
	pb.good++
	return masked, nil
}

// parseRange parses FROM-TO, both addresses of one family, FROM <= TO.
func parseRange(e string) (netipx.IPRange, error) {
	from, to, ok := strings.Cut(e, "-")
	if !ok {
		return netipx.IPRange{}, fmt.Errorf("not a range FROM-TO")
	}
	a, err := parseAddr(from)
	if err != nil {
		return netipx.IPRange{}, err
	}
	b, err := parseAddr(to)
	if err != nil {
		return netipx.IPRange{}, err
	}
	if a.Is4() != b.Is4() {
		return netipx.IPRange{}, fmt.Errorf("start and end are of different families")
	}
	if b.Less(a) {
		return netipx.IPRange{}, fmt.Errorf("end %s is below start %s", b, a)
	}
	return netipx.IPRangeFrom(a, b), nil
}

// parseAddr parses one address strictly: no zone; IPv4-mapped IPv6 becomes IPv4.
func parseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone", s)
	}
	return a.Unmap(), nil
}

// v4mapped holds the IPv4-mapped IPv6 addresses: IPv4 addresses in
// disguise, which Assign records as IPv4.
var v4mapped = netip.MustParsePrefix("::ffff:0:0/96")

func (pb *poolBuilder) build(name string, errs []error) *Pool {
	// An IPv6 entry that covers the IPv4-mapped block (::/0, say) must not
	// hand those addresses out as IPv6: Assign would record them as IPv4,
	// so the IPv6 address would stay free and go to the next Service too.
	pb.b.RemovePrefix(v4mapped)
	set, _ := pb.b.IPSet() // the builder only ever saw valid ranges
	p := newPool(name, set)
	p.dhcp = pb.dhcp
	if pb.good == 0 {
		p.invalid = malformedPool(name, pb.keys, errs)
	}
	return p
}

// malformedPool says why the pool name, all of whose keys (keys) are
// malformed, has no address: each key and its value, what is wrong with
// it, and that no earlier good value stands in for it.
func malformedPool(name string, keys []string, errs []error) string {
	var parts []string
	for _, err := range errs {
		ke, ok := err.(*KeyError)
		if !ok || !slices.Contains(keys, ke.Key) {
			continue
		}
		what := ke.Err.Error()
		if ke.Entry != "" {
			what = fmt.Sprintf("entry %q: %s", ke.Entry, what)
		}
		parts = append(parts, fmt.Sprintf("key %q value %q is malformed: %s; no earlier good value", ke.Key, ke.Value, what))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("every pool key of %q is malformed", name)
	}
	return strings.Join(parts, "; ")
}

// PoolFor returns the pool Services in namespace ns draw from: the
// namespace's own, else the global one, else nil.
func (c *Config) PoolFor(ns string) *Pool {
	if p, ok := c.pools[ns]; ok {
		return p
	}
	return c.pools[GlobalPool]
}

// Pools returns every pool, sorted by name.
func (c *Config) Pools() []*Pool {
	out := make([]*Pool, 0, len(c.pools))
	for _, p := range c.pools {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// inAnyPool reports whether some pool contains a.
func (c *Config) inAnyPool(a netip.Addr) bool {
	for _, p := range c.pools {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// AllowShare reports whether Services in namespace ns may share addresses:
// allow-share-<ns>, else allow-share-global, else false.
func (c *Config) AllowShare(ns string) bool {
	if v, ok := c.allowShare[ns]; ok {
		return v
	}
	return c.allowShare[GlobalPool]
}

// Interface returns the interface kube-vip should use for Services in ns
// (interface-<ns>, else interface-global), or "".
func (c *Config) Interface(ns string) string {
	if v, ok := c.interfaces[ns]; ok {
		return v
	}
	return c.interfaces[GlobalPool]
}

// descending reports whether search-order is desc (hand out from the top).
func (c *Config) descending() bool { return c.desc }

// Accepted returns the raw value in force for each key: the good values of
// the data last parsed, and the last good values kept in place of bad ones.
func (c *Config) Accepted() map[string]string {
	out := make(map[string]string, len(c.accepted))
	for k, v := range c.accepted {
		out[k] = v
	}
	return out
}

// data formats c as ConfigMap data in canonical form (pools as merged
// ranges). Parse(c.data(), nil) yields a Config equal to c.
func (c *Config) data() map[string]string {
	out := map[string]string{}
	for name, p := range c.pools {
		if p.dhcp {
			out[KeyCIDRPrefix+name] = dhcpMarker.String()
			continue
		}
		var parts []string
		for _, r := range p.set.Ranges() {
			parts = append(parts, r.From().String()+"-"+r.To().String())
		}
		if len(parts) > 0 {
			out[KeyRangePrefix+name] = strings.Join(parts, ",")
		}
	}
	for name, v := range c.allowShare {
		out[KeyAllowSharePrefix+name] = strconv.FormatBool(v)
	}
	for name, v := range c.interfaces {
		out[KeyInterfacePrefix+name] = v
	}
	if c.desc {
		out[KeySearchOrder] = "desc"
	}
	if c.skipEnds {
		out[KeySkipEndIPs] = "true"
	}
	return out
}

// equal reports whether c and o hand out the same addresses the same way.
func (c *Config) equal(o *Config) bool {
	if c.desc != o.desc || len(c.pools) != len(o.pools) ||
		len(c.allowShare) != len(o.allowShare) || len(c.interfaces) != len(o.interfaces) {
		return false
	}
	for name, p := range c.pools {
		q, ok := o.pools[name]
		if !ok || !p.equal(q) {
			return false
		}
	}
	for k, v := range c.allowShare {
		if w, ok := o.allowShare[k]; !ok || w != v {
			return false
		}
	}
	for k, v := range c.interfaces {
		if w, ok := o.interfaces[k]; !ok || w != v {
			return false
		}
	}
	return true
}
