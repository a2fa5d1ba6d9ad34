// Package apikey mints API keys and hashes them for storage. Only the
// SHA-256 of a key is ever stored: the key itself is shown once, at creation.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

// Prefix marks a string as a ReplyRocket key, so secret scanners and people
// recognise one that leaked into a log or a repository.
const Prefix = "rr_"

// secretBytes is 256 bits of randomness: far past the 128 bits that make
// guessing hopeless, at no cost since the key is typed once and pasted after.
const secretBytes = 32

// displayLen is how many characters of the key are kept in clear (the
// "prefix" column) so a user can tell their keys apart without the secret.
const displayLen = len(Prefix) + 8

// Key is a freshly minted key.
type Key struct {
	Plain   string   // shown to its owner once; never stored
	Display string   // stored in clear: the first characters, to recognise it
	Hash    [32]byte // stored
}

// New mints a key.
func New() (Key, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("read random bytes for an API key: %w", err)
	}
	plain := Prefix + base64.RawURLEncoding.EncodeToString(b)
	return Key{Plain: plain, Display: plain[:displayLen], Hash: Hash(plain)}, nil
}

// Hash is what is stored and looked up for key. A fast hash suffices: a key
// has 256 random bits, so unlike a password there is nothing to brute-force.
//
// The key's bytes are read in place: sha256 neither keeps nor changes its
// input, and a copy was an allocation of every authenticated request.
func Hash(key string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(key), len(key)))
}

// Plausible reports whether s has the shape of a key, which lets
// authentication reject garbage without a database round trip.
func Plausible(s string) bool {
	if !strings.HasPrefix(s, Prefix) {
		return false
	}
	// Decoded into the stack: DecodeString allocated on every request.
	rest := s[len(Prefix):]
	if base64.RawURLEncoding.DecodedLen(len(rest)) != secretBytes {
		return false
	}
	var raw [secretBytes]byte
	n, err := base64.RawURLEncoding.Decode(raw[:], unsafe.Slice(unsafe.StringData(rest), len(rest)))
	return err == nil && n == secretBytes
}

// Issued is a key just stored for a user; Plain is its only appearance.
type Issued struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	Name      string
	Display   string
	Plain     string
	CreatedAt time.Time
}

// Issue mints a key for userID and stores its hash.
func Issue(ctx context.Context, q db.Querier, userID uuid.UUID, name string) (Issued, error) {
	k, err := New()
	if err != nil {
		return Issued{}, err
	}
	row, err := q.CreateAPIKey(ctx, db.CreateAPIKeyParams{UserID: userID, Name: name, Prefix: k.Display, KeyHash: k.Hash[:]})
	if err != nil {
		return Issued{}, fmt.Errorf("store API key %q for user %s: %w", name, userID, err)
	}
	return Issued{ID: row.ID, UserID: row.UserID, Name: row.Name, Display: row.Prefix, Plain: k.Plain, CreatedAt: row.CreatedAt}, nil
}

// CreateUser creates a user with a first key in one transaction: a user
// without a key could never call the API.
func CreateUser(ctx context.Context, s db.Store, email, name string) (db.User, Issued, error) {
	var user db.User
	var key Issued
	err := s.InTx(ctx, db.TxOptions{}, func(q db.Querier) error {
		u, err := q.CreateUser(ctx, db.CreateUserParams{Email: email, Name: name})
		if err != nil {
			return fmt.Errorf("create user %s: %w", email, err)
		}
		k, err := Issue(ctx, q, u.ID, "default")
		if err != nil {
			return err
		}
		user, key = u, k
		return nil
	})
	return user, key, err
}
