package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

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
	u, k, err := apikey.CreateUser(c.Request().Context(), a.store, in.Email, in.Name)
	if errors.Is(err, db.ErrConflict) {
		return newProblem(http.StatusConflict, "conflict", "Conflict", "A user with this email already exists.")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, createdUserJSON{User: toUser(u), APIKey: toIssued(k)})
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
	k, err := apikey.Issue(c.Request().Context(), a.store, id, in.Name)
	if errors.Is(err, db.ErrInvalidReference) {
		return notFound("user")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toIssued(k))
}

func (a *API) revokeKey(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	_, err = a.store.RevokeAPIKey(c.Request().Context(), id)
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
