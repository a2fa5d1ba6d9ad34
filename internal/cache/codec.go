package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Codec is how the generated decorator turns one query's result type into
// bytes and back, and copies it. The generator writes one per result type,
// field by field, so values round-trip to their exact Go types without
// reflection (gob would allocate per field and per type descriptor).
type Codec[T any] struct {
	Encode func(b []byte, v T) []byte
	Decode func(d *Decoder) T
	// Clone copies the parts of v a caller could mutate through (slices,
	// pointers); nil when T has none, as a plain copy is then enough.
	Clone func(v T) T
}

// The Append* functions write the canonical encoding the keys and values
// use. Lengths are uvarints; integers are fixed 8 bytes, big-endian.

func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func AppendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func AppendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func AppendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

func AppendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendLen writes a slice length that keeps nil apart from empty, so a
// decoded value is exactly the one that was encoded.
func AppendLen(b []byte, n int, isNil bool) []byte {
	if isNil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

func AppendBytes(b []byte, v []byte) []byte {
	b = AppendLen(b, len(v), v == nil)
	return append(b, v...)
}

// AppendTime writes t with its zone offset (time's own binary form), for
// values that must decode to the same wall clock and location.
func AppendTime(b []byte, t time.Time) []byte {
	out, err := t.AppendBinary(b)
	if err != nil {
		// Only zone offsets that are not whole minutes fail; PostgreSQL
		// never produces them. Fall back to the instant in UTC.
		out, _ = t.UTC().AppendBinary(b)
	}
	return out
}

// AppendTimeKey writes only the instant: two times that name the same
// instant in different zones select the same rows, so they share a key.
func AppendTimeKey(b []byte, t time.Time) []byte {
	b = AppendInt64(b, t.Unix())
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// ErrCorrupt is the error of a value that does not decode.
var ErrCorrupt = errors.New("cache: corrupt value")

// Decoder reads what the Append* functions wrote. The first failure sticks
// and every later read returns zero values, so generated code checks Err
// once at the end. Its methods consume input, so they are named Read…, as
// in golang.org/x/crypto/cryptobyte (a String method would also make it a
// fmt.Stringer by accident).
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

func (d *Decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: short or bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

// Err is the first decoding failure, or an error when bytes are left over.
func (d *Decoder) Err() error {
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return d.err
}

func (d *Decoder) ReadBool() bool {
	if len(d.b) < 1 || d.b[0] > 1 {
		d.fail("bool")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *Decoder) ReadUint64() uint64 {
	if len(d.b) < 8 {
		d.fail("integer")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *Decoder) ReadInt64() int64 { return int64(d.ReadUint64()) }

func (d *Decoder) ReadFloat64() float64 { return math.Float64frombits(d.ReadUint64()) }

func (d *Decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *Decoder) take(n uint64, what string) []byte {
	if uint64(len(d.b)) < n {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *Decoder) ReadString() string {
	n := d.uvarint("string length")
	return string(d.take(n, "string"))
}

// ReadLen reads a length written by AppendLen: -1 for nil.
func (d *Decoder) ReadLen() int {
	n := d.uvarint("length")
	if n > uint64(len(d.b))+1 {
		// Every element takes at least a byte, so a length beyond the
		// remaining bytes is corruption, not a reason to allocate.
		d.fail("length")
		return -1
	}
	return int(n) - 1
}

func (d *Decoder) ReadBytes() []byte {
	n := d.ReadLen()
	if n < 0 {
		return nil
	}
	src := d.take(uint64(n), "bytes")
	if src == nil {
		return nil
	}
	out := make([]byte, n)
	copy(out, src)
	return out
}

// ReadFixed fills dst (a fixed-size array such as a UUID) from the input.
func (d *Decoder) ReadFixed(dst []byte) {
	copy(dst, d.take(uint64(len(dst)), "fixed-size value"))
}

func (d *Decoder) ReadTime() time.Time {
	// time's binary form: version byte, 8 seconds, 4 nanoseconds, 2 offset
	// minutes, and with version 2 one more byte of offset seconds.
	if len(d.b) < 1 {
		d.fail("time")
		return time.Time{}
	}
	n := uint64(15)
	if d.b[0] == 2 {
		n = 16
	}
	var t time.Time
	if err := t.UnmarshalBinary(d.take(n, "time")); err != nil {
		d.fail("time")
	}
	return t
}
