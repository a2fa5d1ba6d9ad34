package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
)

// looksLikeAddress is a deliberately loose check (something@something.tld):
// the mail server is the real judge; this only catches obvious mistakes.
func looksLikeAddress(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(s, " \t\r\n<>")
}

func (a *API) bulkInsertEmails(c echo.Context) error {
	var in bulkEmailsInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var errs []FieldError
	if len(in.Emails) == 0 {
		errs = append(errs, FieldError{Field: "emails", Message: "at least one email is required"})
	}
	errs, emails := checkEmails(errs, in.Emails)
	if len(errs) > 0 {
		return validationFailed(errs)
	}
	camp, err := a.ownCampaign(c)
	if err != nil {
		return err
	}
	n, err := a.db(c).InsertEmails(c.Request().Context(), db.EmailRows(camp.ID, emails, a.now()))
	if errors.Is(err, db.ErrInvalidReference) {
		// The campaign was deleted between the check and the COPY.
		return notFound("campaign")
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, insertedJSON{Inserted: n})
}

// firstEmailAfter is the position before every email in an oldest-first walk.
var firstEmailAfter = time.Unix(0, 0).UTC()

func (a *API) listCampaignEmails(c echo.Context) error {
	limit, err := queryRule(c, limitRule)
	if err != nil {
		return err
	}
	cur, ok, err := parseCursor(c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	if !ok {
		cur = cursor{At: firstEmailAfter, ID: uuid.Nil}
	}
	camp, err := a.ownCampaign(c)
	if err != nil {
		return err
	}
	rows, err := a.db(c).ListCampaignEmails(c.Request().Context(), db.ListCampaignEmailsParams{
		CampaignID: camp.ID, AfterCreatedAt: cur.At, AfterID: cur.ID, PageSize: int32(limit + 1),
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, newPage(rows, limit, toEmailEnvelope, func(r db.ListCampaignEmailsRow) cursor {
		return cursor{At: r.CreatedAt, ID: r.ID}
	}))
}

func (a *API) getEmail(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	e, err := a.db(c).GetEmail(c.Request().Context(), db.GetEmailParams{ID: id, UserID: userID(c)})
	if errors.Is(err, db.ErrNotFound) {
		return notFound("email")
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toEmail(e))
}

func (a *API) markOpened(c echo.Context) error {
	return a.markEmail(c, db.EmailEventKindOpened)
}

func (a *API) markReplied(c echo.Context) error {
	return a.markEmail(c, db.EmailEventKindReplied)
}
