package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
)

// HeaderIdempotencyKey names a POST so that its retries never repeat it.
const HeaderIdempotencyKey = "Idempotency-Key"

// maxIdempotencyKeyLen bounds a key (the handler checks it, the OpenAPI
// document states it).
const maxIdempotencyKeyLen = 255

// HeaderIdempotentReplayed marks a response replayed from storage.
const HeaderIdempotentReplayed = "Idempotent-Replayed"

const txStoreKey = "replyrocket.tx_store"

// DefaultIdempotencyTTL is how long stored responses answer retries.
const DefaultIdempotencyTTL = 24 * time.Hour

// idempotent makes a POST with an Idempotency-Key run at most once per
// owner (the key's user, or the admin) and key:
//
//   - The claim (an INSERT of the key) and the handler's writes run in one
//     transaction, and the response is stored in it before the commit: a
//     committed write always has its stored response, and a rolled-back one
//     leaves no key behind.
//   - A retry with the same key and the same method, path and body gets the
//     stored status and body (Idempotent-Replayed: true) and writes nothing;
//     with a different request it gets 422.
//   - A retry that arrives while the first is running waits on the key's
//     unique index until the first transaction ends, then replays its
//     response (or runs, if the first rolled back).
//   - Server errors (5xx) and abandoned requests roll back, so the retry
//     runs again; client errors (4xx) are stored like successes.
func (a *API) idempotent(owner func(echo.Context) string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key := c.Request().Header.Get(HeaderIdempotencyKey)
			if key == "" {
				return next(c)
			}
			if len(key) > maxIdempotencyKeyLen || !printableASCII(key) {
				return validationFailed([]FieldError{{Field: HeaderIdempotencyKey, Message: "must be 1 to 255 printable ASCII characters"}})
			}
			return a.runIdempotent(c, next, owner(c), key)
		}
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// errRolledBack makes InTx roll back a request whose answer must not be
// stored (a server error, a client gone).
var errRolledBack = errors.New("idempotent request not stored")

func (a *API) runIdempotent(c echo.Context, next echo.HandlerFunc, owner, key string) error {
	req := c.Request()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return jsonProblem(err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	h := sha256.New()
	h.Write([]byte(req.Method + " " + req.URL.Path + "\n"))
	h.Write(body)
	hash := h.Sum(nil)

	ctx := req.Context()
	var stored *db.IdempotencyKey
	var out *bufferedResponse
	err = a.store.InTx(ctx, db.TxOptions{MaxAttempts: 1}, func(q db.Querier) error {
		n, err := q.ClaimIdempotencyKey(ctx, db.ClaimIdempotencyKeyParams{
			Owner: owner, Key: key, Method: req.Method, Path: req.URL.Path, RequestHash: hash,
		})
		if err != nil {
			return err
		}
		if n == 0 {
			row, err := q.GetIdempotencyKey(ctx, db.GetIdempotencyKeyParams{Owner: owner, Key: key})
			if err != nil {
				return err
			}
			stored = &row
			return nil
		}
		out = runBuffered(c, next, txStore{Querier: q})
		if out.status >= 500 || ctx.Err() != nil {
			return errRolledBack
		}
		status := int32(out.status)
		return q.SaveIdempotentResponse(ctx, db.SaveIdempotentResponseParams{
			Owner: owner, Key: key, Status: &status, Response: out.body.Bytes(),
			ContentType: optional(out.header.Get(echo.HeaderContentType)),
			Location:    optional(out.header.Get(echo.HeaderLocation)),
		})
	})
	switch {
	case errors.Is(err, errRolledBack):
		// Rendered (and logged) into the buffer already; nothing stored.
		return out.flush(c)
	case err != nil && out != nil:
		// The handler ran but its transaction failed (storing the answer, or
		// the commit): the buffered answer is void, the error is the answer.
		c.Response().Committed, c.Response().Status, c.Response().Size = false, 0, 0
		return err
	case err != nil:
		return err
	case stored != nil:
		return replay(c, stored, hash)
	}
	return out.flush(c)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// replay answers a retry from the stored response, or 422 when the key was
// used for a different request.
func replay(c echo.Context, row *db.IdempotencyKey, hash []byte) error {
	if !bytes.Equal(row.RequestHash, hash) || row.Status == nil {
		return newProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
			"This Idempotency-Key was already used for a different request (method, path or body); use a new key for a new request.")
	}
	h := c.Response().Header()
	if row.ContentType != nil {
		h.Set(echo.HeaderContentType, *row.ContentType)
	}
	if row.Location != nil {
		h.Set(echo.HeaderLocation, *row.Location)
	}
	h.Set(HeaderIdempotentReplayed, "true")
	c.Response().WriteHeader(int(*row.Status))
	_, err := c.Response().Write(row.Response)
	return err
}

// bufferedResponse is a response held back until its transaction commits:
// a client must never see a 201 for a write that then rolled back.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// runBuffered runs next with its response captured and its store bound to
// the transaction; an error it returns is rendered into the buffer too, so
// client errors can be stored.
func runBuffered(c echo.Context, next echo.HandlerFunc, s db.Store) *bufferedResponse {
	res := c.Response()
	real := res.Writer
	buf := &bufferedResponse{header: real.Header().Clone()}
	res.Writer = buf
	c.Set(txStoreKey, s)
	defer func() {
		res.Writer = real
		c.Set(txStoreKey, nil)
	}()
	if err := next(c); err != nil {
		c.Error(err)
	}
	if buf.status == 0 {
		buf.status = res.Status
	}
	return buf
}

// flush sends the buffered response to the client.
func (b *bufferedResponse) flush(c echo.Context) error {
	w := c.Response().Writer
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, err := w.Write(b.body.Bytes())
	return err
}

// txStore is a Store bound to one transaction: the handler's writes join
// the transaction of its Idempotency-Key, and a nested InTx runs in it too.
type txStore struct{ db.Querier }

func (t txStore) InTx(_ context.Context, _ db.TxOptions, fn func(db.Querier) error) error {
	return fn(t.Querier)
}

// db is the store a handler uses: the idempotent request's transaction when
// there is one.
func (a *API) db(c echo.Context) db.Store {
	if s, ok := c.Get(txStoreKey).(db.Store); ok && s != nil {
		return s
	}
	return a.store
}
