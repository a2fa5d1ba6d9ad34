package cache

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Scoped versions. A scope names the rows of one table by the value of one
// column ("emails.campaign_id"), or through a join to a parent table
// ("emails.campaign_id>campaigns.user_id": the emails of the campaigns whose
// user_id is the value). The generator derives which scope pins each cached
// read and which scope values each write's rows carry, from the SQL.
//
// Each scope has ScopeSlots version slots; a (value, column) pair hashes to
// one of them, where column "" is the row slot that inserts and deletes
// bump and a column is the slot that an UPDATE of that column bumps. A read
// pinned to value v captures v's row slot and one slot per column it
// references; a write that knows v bumps v's slots, and one that does not
// bumps the scope-wide versions (named slots "scope" and "scope#column"),
// which every pinned read captures too. Memory is fixed whatever the number
// of values: two values sharing a slot only invalidate each other's entries
// more often, never less.

// ScopeSlots is the number of hashed version slots of each scope. It is part
// of the protocol between instances sharing Redis: every instance must map
// a value to the same slot.
const ScopeSlots = 4096

// MaxScopeValues bounds the distinct values one write collects in one
// scope; a write with more bumps the scope-wide version instead. It equals
// ScopeSlots: more values than slots would bump nearly every slot anyway.
// Below it, a write of many values (a batch of events across many emails
// and campaigns) bumps the distinct slots its values hash to, so its cost
// is bounded by ScopeSlots and it invalidates only those slots' entries.
const MaxScopeValues = ScopeSlots

// WideSlots is the point past which bumping a write's distinct slots of
// one scope is not worth it: with more than three quarters of the slots
// bumped, nearly every entry of the scope dies anyway, and one scope-wide
// version costs one counter instead of thousands.
const WideSlots = ScopeSlots * 3 / 4

// MaxResolveKeys bounds the keys a write looks up to find the values of
// a path scope (the owners of the campaigns a batch touched); with more,
// the write bumps that scope wide. It bounds one extra query per write.
const MaxResolveKeys = 1024

// Scope declares a scope to the cache.
type Scope struct {
	Name  string // e.g. "emails.campaign_id"
	Table string // the table whose rows it names
}

// ScopeDep is how a cached read depends on a scope: the values it is pinned
// to are given per call (Deps.Add), the columns it references here.
type ScopeDep struct {
	Scope   string   `json:"scope"`
	Columns []string `json:"columns"`
}

type scopeInfo struct {
	Scope
	base int // index of the first of its ScopeSlots in Cache.vers
	// label is the value of the scope label of the invalidation metric: the
	// part of the name after the table.
	label string
}

// rowColumn is the column name of a scope's row slot.
const rowColumn = ""

// hashValue is FNV-1a over v: stable across processes and deploys.
func hashValue(v []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range v {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return h
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// valueWindow is how many consecutive slots one value's columns share: a
// value's row slot and column slots all fall in a window of valueWindow
// slots starting at the value's own slot. Two values then collide only
// when their windows overlap (about 2·valueWindow/ScopeSlots), however
// many columns a write bumps and a read captures; spread over the whole
// scope, a write of 6 counter columns and a read of 7 collided 42 times
// as often as two single slots. Columns of one value may share a slot of
// its window, which only costs that value's reads of other columns.
const valueWindow = 8

// slotOf is the slot of (value hash, column hash) within a scope.
func slotOf(vh, ch uint64) int {
	// splitmix64's finaliser spreads the value's bits over the low ones
	// the modulo keeps.
	z := vh
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	c := ch ^ (ch >> 29)
	return int((z%ScopeSlots + c%valueWindow) % ScopeSlots)
}

// scopedDep is a registered ScopeDep.
type scopedDep struct {
	scope *scopeInfo
	cols  []uint64 // hashes of rowColumn and of the referenced columns
}

// Deps collects the slots a read depends on for its arguments' values; the
// generated code calls Add once per pinned value.
type Deps struct {
	q     *Query
	slots []int32
}

// Add records that the read's dep-th scope is pinned to the value v.
func (d *Deps) Add(dep int, v []byte) { d.addHash(dep, hashValue(v)) }

// AddString is Add for a text value, without converting it.
func (d *Deps) AddString(dep int, s string) { d.addHash(dep, hashString(s)) }

// AddInt is Add for an integer value of any width.
func (d *Deps) AddInt(dep int, n int64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	d.addHash(dep, hashValue(b[:]))
}

func (d *Deps) addHash(dep int, vh uint64) {
	sd := d.q.scoped[dep]
	for _, ch := range sd.cols {
		d.slots = append(d.slots, int32(sd.scope.base+slotOf(vh, ch)))
	}
}

// Bumps collects what one write invalidates: table-wide versions, and per
// scope either the values its rows carry or, when they are unknown or too
// many, the scope-wide versions. Not safe for concurrent use.
type Bumps struct {
	c      *Cache
	named  map[int]struct{}
	scopes map[*scopeInfo]*scopeBumps
	lsn    uint64
	writer string
}

// SetWriter names the user whose write this is: readers acting for that
// user on other instances wait for (or bypass) the cache until they
// applied it.
func (b *Bumps) SetWriter(user string) { b.writer = user }

// SetLSN records the WAL position of the write (0: unknown or no
// replicas); the highest of several is kept.
func (b *Bumps) SetLSN(lsn uint64) { b.lsn = max(b.lsn, lsn) }

type scopeBumps struct {
	wide   bool
	cols   map[string]struct{}
	values map[uint64]struct{}
}

// NewBumps starts an empty set of invalidations.
func (c *Cache) NewBumps() *Bumps {
	return &Bumps{c: c, named: map[int]struct{}{}, scopes: map[*scopeInfo]*scopeBumps{}}
}

// Table bumps named version slots: a table ("emails", for rows added or
// removed) or a table's column ("emails#is_opened", for an UPDATE of it).
// These are what reads that no scope pins depend on. Unknown names are
// programming errors of the generator and panic.
func (b *Bumps) Table(names ...string) {
	for _, n := range names {
		b.named[b.c.mustIndex(n)] = struct{}{}
	}
}

// Wide bumps the scope-wide versions of scope for the columns cols (""
// for rows added or removed): every read pinned by that scope is
// invalidated, whatever its value.
func (b *Bumps) Wide(scope string, cols ...string) {
	sb := b.scope(scope)
	sb.wide = true
	sb.values = nil
	for _, c := range cols {
		sb.cols[c] = struct{}{}
	}
}

// Value bumps the slots of value v of scope for the columns cols.
func (b *Bumps) Value(scope string, v []byte, cols ...string) {
	b.valueHash(scope, hashValue(v), cols)
}

// String is Value for a text value.
func (b *Bumps) String(scope, s string, cols ...string) {
	b.valueHash(scope, hashString(s), cols)
}

// Int is Value for an integer value of any width.
func (b *Bumps) Int(scope string, n int64, cols ...string) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(n))
	b.valueHash(scope, hashValue(buf[:]), cols)
}

func (b *Bumps) valueHash(scope string, vh uint64, cols []string) {
	sb := b.scope(scope)
	for _, c := range cols {
		sb.cols[c] = struct{}{}
	}
	if sb.wide {
		return
	}
	if b.c.cfg.ScopesDisabled {
		sb.wide, sb.values = true, nil
		return
	}
	sb.values[vh] = struct{}{}
	if len(sb.values) > MaxScopeValues {
		sb.wide, sb.values = true, nil
	}
}

func (b *Bumps) scope(name string) *scopeBumps {
	si, ok := b.c.scopes[name]
	if !ok {
		panic(fmt.Sprintf("cache: unknown scope %q", name))
	}
	sb := b.scopes[si]
	if sb == nil {
		sb = &scopeBumps{cols: map[string]struct{}{}, values: map[uint64]struct{}{}}
		b.scopes[si] = sb
	}
	return sb
}

// Empty reports whether b invalidates nothing.
func (b *Bumps) Empty() bool { return len(b.named) == 0 && len(b.scopes) == 0 }

// slots resolves b to version slot indexes, counting each scope's outcome
// for the metrics.
func (b *Bumps) slots() []int {
	out := make([]int, 0, len(b.named)+8*len(b.scopes))
	unscoped := map[string]bool{}
	for i := range b.named {
		out = append(out, i)
		if t, _, _ := strings.Cut(b.c.named[i], slotSep); len(b.c.tableScopes[t]) == 0 {
			unscoped[t] = true
		}
	}
	for t := range unscoped {
		b.c.m.countTable(t, tableWide)
	}
	for si, sb := range b.scopes {
		if sb.wide {
			b.c.m.countScope(si, true)
			for col := range sb.cols {
				out = append(out, b.c.mustIndex(wideName(si.Name, col)))
			}
			continue
		}
		// Each column's hash once, not once per value: a batch of events
		// bumps hundreds of values in eight columns.
		colHashes := make([]uint64, 0, len(sb.cols))
		for col := range sb.cols {
			colHashes = append(colHashes, hashString(col))
		}
		seen := make(map[int]struct{}, len(sb.values)*len(colHashes))
		for vh := range sb.values {
			for _, ch := range colHashes {
				seen[si.base+slotOf(vh, ch)] = struct{}{}
			}
		}
		if len(seen) > WideSlots {
			b.c.m.countScope(si, true)
			for col := range sb.cols {
				out = append(out, b.c.mustIndex(wideName(si.Name, col)))
			}
			continue
		}
		b.c.m.countScope(si, false)
		for i := range seen {
			out = append(out, i)
		}
	}
	return out
}

// wideName is the named slot of a scope's wide version for a column.
func wideName(scope, col string) string {
	if col == rowColumn {
		return scope
	}
	return scope + slotSep + col
}

// scopeLabel is the part of a scope's name after its table.
func scopeLabel(s Scope) string {
	return strings.TrimPrefix(s.Name, s.Table+".")
}
