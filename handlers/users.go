package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/swaggest/jsonschema-go"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
)

type createUserInput struct {
	Email string `json:"email" required:"true" minLength:"3" maxLength:"320" format:"email"`
	Name  string `json:"name" required:"true" minLength:"1" maxLength:"200"`
}

type createKeyInput struct {
	Name string `json:"name" minLength:"1" maxLength:"200" description:"Defaults to \"default\"."`
}

type createdUserJSON struct {
	User   userJSON   `json:"user"`
	APIKey apiKeyJSON `json:"api_key"`
}

// createUser makes a user and its first key in one transaction: a user
// without a key would be unreachable.
func (a *API) createUser(c echo.Context) error {
	var in createUserInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	in.Email = strings.TrimSpace(in.Email)
	errs := checkRule(nil, "email", in.Email, userEmailRule)
	if !looksLikeAddress(in.Email) {
		errs = append(errs, FieldError{Field: "email", Message: "must be an email address"})
	}
	errs = checkRule(errs, "name", in.Name, userNameRule)
	if len(errs) > 0 {
		return validationFailed(errs)
	}
	u, k, err := apikey.CreateUser(c.Request().Context(), a.db(c), in.Email, in.Name)
	if errors.Is(err, db.ErrConflict) {
		return newProblem(http.StatusConflict, "conflict", "Conflict", "A user with this email already exists.")
	}
	if err != nil {
		return err
	}
	a.keyCreated(c, k.Plain)
	return writeJSON(c, http.StatusCreated, createdUserJSON{User: toUser(u), APIKey: toIssued(k)})
}

func (a *API) createKey(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	in := createKeyInput{}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	if in.Name == "" {
		in.Name = "default"
	}
	if errs := checkRule(nil, "name", in.Name, keyNameRule); len(errs) > 0 {
		return validationFailed(errs)
	}
	k, err := apikey.Issue(c.Request().Context(), a.db(c), id, in.Name)
	if errors.Is(err, db.ErrInvalidReference) {
		return notFound("user")
	}
	if err != nil {
		return err
	}
	a.keyCreated(c, k.Plain)
	return writeJSON(c, http.StatusCreated, toIssued(k))
}

func (a *API) revokeKey(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	_, err = a.db(c).RevokeAPIKey(c.Request().Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return notFound("API key")
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func toIssued(k apikey.Issued) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, UserID: k.UserID, Name: k.Name, Prefix: k.Display, Key: k.Plain, CreatedAt: k.CreatedAt.UTC()}
}

type updateKeyInput struct {
	// RateLimitPerMinute is required: a number sets the key's own budget,
	// null restores the server default.
	RateLimitPerMinute nullableLimit `json:"rate_limit_per_minute" required:"true" description:"Cost units per minute, or null for the server default (RATE_LIMIT_PER_MINUTE)."`
}

// nullableLimit is a budget as sent: kept raw so that an absent field and
// null differ. Its schema is a whole number in range or null.
type nullableLimit struct{ json.RawMessage }

// JSONSchema describes the value for the OpenAPI document.
func (nullableLimit) JSONSchema() (jsonschema.Schema, error) {
	var s jsonschema.Schema
	s.TypeEns().SliceOfSimpleTypeValues = []jsonschema.SimpleType{jsonschema.Integer, jsonschema.Null}
	s.WithMinimum(1).WithMaximum(maxKeyRateLimit)
	return s, nil
}

// maxKeyRateLimit bounds a key's own budget.
const maxKeyRateLimit = 1_000_000

// updateKey sets or clears a key's own request budget. The key lookup that
// authenticates requests reads the column, so the change applies within
// the cache's invalidation, at once on every instance.
func (a *API) updateKey(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var in updateKeyInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var limit *int32
	switch raw := strings.TrimSpace(string(in.RateLimitPerMinute.RawMessage)); raw {
	case "":
		return validationFailed([]FieldError{{Field: "rate_limit_per_minute", Message: "is required (a number, or null for the default)"}})
	case "null":
	default:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxKeyRateLimit {
			return validationFailed([]FieldError{{Field: "rate_limit_per_minute", Message: "must be a whole number from 1 to 1000000, or null"}})
		}
		v := int32(n)
		limit = &v
	}
	k, err := a.db(c).SetAPIKeyRateLimit(c.Request().Context(), db.SetAPIKeyRateLimitParams{ID: id, RateLimitPerMinute: limit})
	if errors.Is(err, db.ErrNotFound) {
		return notFound("API key")
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, apiKeyJSON{ID: k.ID, UserID: k.UserID, Name: k.Name, Prefix: k.Prefix,
		CreatedAt: k.CreatedAt.UTC(), RevokedAt: k.RevokedAt, RateLimitPerMinute: k.RateLimitPerMinute})
}

// keyCreated makes a new key good at once: known to the set of existing
// keys here and, through it, on the other instances, and forgotten by
// the negative cache.
func (a *API) keyCreated(c echo.Context, plain string) {
	h := apikey.Hash(plain)
	a.unknownKeys.forget(h)
	a.keys.Add(c.Request().Context(), h)
}
