package seed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
)

// DemoEmail is the demo user of `replyrocket dev`.
const DemoEmail = "demo@replyrocket.dev"

// Demo is what `replyrocket dev` prints.
type Demo struct {
	Key        string
	CampaignID string // a campaign to put in the example commands
	Seeded     bool   // data was loaded on this run
}

// DemoOptions size the demo data: three campaigns over six months, enough
// to make every statistic and several partitions non-trivial while loading
// in about a second.
var DemoOptions = Options{Users: 1, CampaignsPerUser: 3, EmailsPerCampaign: 2000, Months: 6, UserEmails: []string{DemoEmail}, UserNames: []string{"Demo User"}}

// EnsureDemo seeds the demo user when the database has no users, and
// returns a working key for it. Only the key's hash is in the database, so
// the key itself is kept in keyFile (mode 0600) for the next run; if that
// file is gone or its key revoked, a new key is minted and saved.
func EnsureDemo(ctx context.Context, store db.Store, pool *pgxpool.Pool, keyFile string) (Demo, error) {
	n, err := store.CountUsers(ctx)
	if err != nil {
		return Demo{}, fmt.Errorf("count users: %w", err)
	}
	var d Demo
	if n == 0 {
		res, err := Run(ctx, store, pool, DemoOptions)
		if err != nil {
			return Demo{}, fmt.Errorf("seed demo data: %w", err)
		}
		d.Key, d.Seeded = res.Users[0].Key, true
		if err := writeKey(keyFile, d.Key); err != nil {
			return Demo{}, err
		}
	}
	user, err := store.GetUserByEmail(ctx, DemoEmail)
	if errors.Is(err, db.ErrNotFound) {
		// Users exist, none of them the demo user: give the newcomer one
		// anyway, without data.
		u, k, err := apikey.CreateUser(ctx, store, DemoEmail, "Demo User")
		if err != nil {
			return Demo{}, err
		}
		user, d.Key = u, k.Plain
		if err := writeKey(keyFile, d.Key); err != nil {
			return Demo{}, err
		}
	} else if err != nil {
		return Demo{}, fmt.Errorf("find demo user: %w", err)
	}
	if d.Key == "" {
		if d.Key, err = savedKey(ctx, store, keyFile); err != nil {
			return Demo{}, err
		}
	}
	if d.Key == "" {
		k, err := apikey.Issue(ctx, store, user.ID, "dev")
		if err != nil {
			return Demo{}, err
		}
		d.Key = k.Plain
		if err := writeKey(keyFile, d.Key); err != nil {
			return Demo{}, err
		}
	}
	if err := pool.QueryRow(ctx, "SELECT id::text FROM campaigns WHERE user_id = $1 ORDER BY created_at, id LIMIT 1", user.ID).Scan(&d.CampaignID); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Demo{}, fmt.Errorf("find a demo campaign: %w", err)
	}
	return d, nil
}

// savedKey returns the key in keyFile if it still authenticates, else "".
func savedKey(ctx context.Context, store db.Store, keyFile string) (string, error) {
	b, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read demo key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if !apikey.Plausible(key) {
		return "", nil
	}
	h := apikey.Hash(key)
	_, err = store.GetAPIKeyByHash(ctx, h[:])
	if errors.Is(err, db.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("check demo key: %w", err)
	}
	return key, nil
}

func writeKey(path, key string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("save demo key: %w", err)
	}
	return nil
}
