package db

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// NewEmailID returns a UUIDv7 for an email created at t, and the created_at
// that goes with it: t truncated to the millisecond the id encodes. The
// schema checks created_at = uuid7_time(id), which is what lets a lookup by
// id alone read a single month partition.
func NewEmailID(t time.Time) (uuid.UUID, time.Time) {
	var id uuid.UUID
	if _, err := rand.Read(id[6:]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// internally instead); keep the invariant obvious anyway.
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	ms := uint64(t.UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(id[:6], ts[2:])
	id[6] = id[6]&0x0f | 0x70 // version 7
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id, time.UnixMilli(int64(ms)).UTC()
}

// EmailTime is the creation time a UUIDv7 email id encodes.
func EmailTime(id uuid.UUID) time.Time {
	var ts [8]byte
	copy(ts[2:], id[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(ts[:]))).UTC()
}
