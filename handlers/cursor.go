package handlers

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// cursor is a keyset position: the (created_at, id) of the last row a page
// held. Clients see it as an opaque token so the encoding can change.
type cursor struct {
	At time.Time
	ID uuid.UUID
}

// cursorLen is 8 bytes of Unix microseconds (PostgreSQL's precision) and
// the 16-byte id.
const cursorLen = 8 + 16

func (c cursor) String() string {
	var b [cursorLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.At.UnixMicro()))
	copy(b[8:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parseCursor reads the cursor query parameter; "" is the first page.
func parseCursor(s string) (cursor, bool, error) {
	if s == "" {
		return cursor{}, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return cursor{}, false, validationFailed([]FieldError{{Field: "cursor", Message: "is not a cursor this API returned"}})
	}
	var c cursor
	c.At = time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC()
	copy(c.ID[:], b[8:])
	return c, true, nil
}

// page is the shape of every list response.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor" description:"null on the last page"`
}

// newPage builds a page from rows fetched with limit+1: the extra row only
// says that another page exists.
func newPage[R, T any](rows []R, limit int, conv func(R) T, pos func(R) cursor) page[T] {
	p := page[T]{Items: make([]T, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			next := pos(rows[limit-1]).String()
			p.NextCursor = &next
			break
		}
		p.Items = append(p.Items, conv(r))
	}
	return p
}
