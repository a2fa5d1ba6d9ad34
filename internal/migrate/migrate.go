// Package migrate applies the embedded goose migrations of package schema.
package migrate

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/replyrocket/replyrocket/schema"
)

// Migrator runs migrations against one database. Two migrators on the same
// database (two instances starting at once) are safe: goose's Postgres
// session locker makes the second wait for the first.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
}

// Open connects to url with its own small database/sql handle (goose's
// Provider needs database/sql) and prepares the provider.
func Open(url string) (*Migrator, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	// A waiting migrator checks the advisory lock every second for up to ten
	// minutes, rather than goose's default of every five.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migration locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, schema.FS, goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migration provider: %w", err)
	}
	return &Migrator{db: db, provider: p}, nil
}

// Close releases the connection.
func (m *Migrator) Close() error { return m.db.Close() }

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) {
	res, err := m.provider.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate up: %w", err)
	}
	return res, nil
}

// Down rolls back the newest applied migration.
func (m *Migrator) Down(ctx context.Context) (*goose.MigrationResult, error) {
	res, err := m.provider.Down(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate down: %w", err)
	}
	return res, nil
}

// DownTo rolls back every migration newer than version (0: all of them).
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]*goose.MigrationResult, error) {
	res, err := m.provider.DownTo(ctx, version)
	if err != nil {
		return res, fmt.Errorf("migrate down to %d: %w", version, err)
	}
	return res, nil
}

// Redo rolls back the newest migration and applies it again.
func (m *Migrator) Redo(ctx context.Context) error {
	if _, err := m.Down(ctx); err != nil {
		return err
	}
	if _, err := m.provider.UpByOne(ctx); err != nil {
		return fmt.Errorf("migrate redo: %w", err)
	}
	return nil
}

// Status lists every migration with whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]*goose.MigrationStatus, error) {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return st, nil
}

// Up is the one-call form: migrate the database at url to the newest version.
func Up(ctx context.Context, url string) error {
	m, err := Open(url)
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = m.Up(ctx)
	return err
}
