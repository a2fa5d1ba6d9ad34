package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
)

// firstPageBefore is the position before every campaign in a newest-first
// walk: a far-future time and the largest uuid.
var (
	firstPageBefore   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	firstPageBeforeID = uuid.Max
)

// Request bodies. Their validation rules are tags, read by the handlers
// (rules.go) and by the OpenAPI document alike.

type newEmailInput struct {
	Recipient string `json:"recipient" required:"true" minLength:"3" maxLength:"320" format:"email"`
	Subject   string `json:"subject" required:"true" minLength:"0" maxLength:"998"`
	Body      string `json:"body" required:"true" minLength:"0" maxLength:"1048576"`
}

type createCampaignInput struct {
	Name   string             `json:"name" required:"true" minLength:"1" maxLength:"200"`
	Status *db.CampaignStatus `json:"status" description:"Defaults to draft."`
	Emails []newEmailInput    `json:"emails" maxItemsOf:"MaxBulkEmails"`
}

type updateCampaignInput struct {
	_      struct{}           `minProperties:"1"`
	Name   *string            `json:"name" minLength:"1" maxLength:"200"`
	Status *db.CampaignStatus `json:"status"`
}

type bulkEmailsInput struct {
	Emails []newEmailInput `json:"emails" required:"true" minItems:"1" maxItemsOf:"MaxBulkEmails"`
}

// statusMessage lists the statuses of the schema's campaign_status enum, as
// sqlc generated them: a status added by a migration shows up here by itself.
var statusMessage = func() string {
	names := make([]string, 0, len(db.AllCampaignStatusValues()))
	for _, s := range db.AllCampaignStatusValues() {
		names = append(names, string(s))
	}
	return "must be one of " + strings.Join(names, ", ")
}()

func checkStatus(errs []FieldError, s *db.CampaignStatus) []FieldError {
	if s != nil && !s.Valid() {
		errs = append(errs, FieldError{Field: "status", Message: statusMessage})
	}
	return errs
}

// checkEmails validates emails and converts them; field names point into the
// array ("emails[3].recipient") so a client can find the bad one.
func checkEmails(errs []FieldError, in []newEmailInput) ([]FieldError, []db.NewEmail) {
	if len(in) > MaxBulkEmails {
		return append(errs, FieldError{Field: "emails", Message: fmt.Sprintf("at most %d emails per request", MaxBulkEmails)}), nil
	}
	out := make([]db.NewEmail, len(in))
	for i, e := range in {
		p := "emails[" + strconv.Itoa(i) + "]."
		errs = checkRule(errs, p+"recipient", e.Recipient, recipientRule)
		if !looksLikeAddress(e.Recipient) {
			errs = append(errs, FieldError{Field: p + "recipient", Message: "must be an email address"})
		}
		errs = checkRule(errs, p+"subject", e.Subject, subjectRule)
		errs = checkRule(errs, p+"body", e.Body, bodyRule)
		out[i] = db.NewEmail{Recipient: e.Recipient, Subject: e.Subject, Body: e.Body}
		if len(errs) >= 20 {
			// Enough to act on; listing thousands of bad rows helps nobody.
			break
		}
	}
	return errs, out
}

func (a *API) createCampaign(c echo.Context) error {
	var in createCampaignInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	errs := checkRule(nil, "name", in.Name, campaignNameRule)
	errs = checkStatus(errs, in.Status)
	errs, emails := checkEmails(errs, in.Emails)
	if len(errs) > 0 {
		return validationFailed(errs)
	}
	status := db.CampaignStatusDraft
	if in.Status != nil {
		status = *in.Status
	}
	camp, err := db.CreateCampaignWithEmails(c.Request().Context(), a.db(c), db.CreateCampaignWithEmailsParams{
		Campaign: db.CreateCampaignParams{UserID: userID(c), Name: in.Name, Status: status},
		Emails:   emails,
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/campaigns/"+camp.ID.String())
	return writeJSON(c, http.StatusCreated, toCampaign(camp))
}

// ownCampaign loads the caller's campaign; another user's is "not found",
// so ids reveal nothing about what exists.
func (a *API) ownCampaign(c echo.Context) (db.Campaign, error) {
	id, err := pathUUID(c, "id")
	if err != nil {
		return db.Campaign{}, err
	}
	camp, err := a.db(c).GetCampaign(c.Request().Context(), db.GetCampaignParams{ID: id, UserID: userID(c)})
	if errors.Is(err, db.ErrNotFound) {
		return db.Campaign{}, notFound("campaign")
	}
	return camp, err
}

func (a *API) getCampaign(c echo.Context) error {
	camp, err := a.ownCampaign(c)
	if err != nil {
		return err
	}
	return writeCampaign(c, http.StatusOK, toCampaign(camp))
}

func (a *API) listCampaigns(c echo.Context) error {
	limit, err := queryRule(c, limitRule)
	if err != nil {
		return err
	}
	cur, ok, err := parseCursor(c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	if !ok {
		cur = cursor{At: firstPageBefore, ID: firstPageBeforeID}
	}
	switch include := c.QueryParam("include"); include {
	case "":
	case "stats":
		return a.listCampaignsWithStats(c, limit, cur)
	default:
		return validationFailed([]FieldError{{Field: "include", Message: "must be stats or absent"}})
	}
	rows, err := a.db(c).ListCampaigns(c.Request().Context(), db.ListCampaignsParams{
		UserID: userID(c), BeforeCreatedAt: cur.At, BeforeID: cur.ID, PageSize: int32(limit + 1),
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, newPage(rows, limit, toCampaign, func(r db.Campaign) cursor {
		return cursor{At: r.CreatedAt, ID: r.ID}
	}))
}

// listCampaignsWithStats is a page of campaigns with each one's figures,
// read in one statement (and cached) instead of one summary per campaign.
func (a *API) listCampaignsWithStats(c echo.Context, limit int, cur cursor) error {
	rows, err := a.store.ListCampaignsWithStats(c.Request().Context(), db.ListCampaignsWithStatsParams{
		UserID: userID(c), BeforeCreatedAt: cur.At, BeforeID: cur.ID, PageSize: int32(limit + 1),
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, newPage(rows, limit, func(r db.ListCampaignsWithStatsRow) campaignJSON {
		out := toCampaign(db.Campaign{ID: r.ID, UserID: r.UserID, Name: r.Name, Status: r.Status, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
		stats := newSummary(counts{r.Total, r.Opened, r.Replied, r.Sent, r.Bounced, r.Failed})
		out.Stats = &stats
		return out
	}, func(r db.ListCampaignsWithStatsRow) cursor {
		return cursor{At: r.CreatedAt, ID: r.ID}
	}))
}

func (a *API) updateCampaign(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var in updateCampaignInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var errs []FieldError
	if in.Name == nil && in.Status == nil {
		errs = append(errs, FieldError{Field: "name", Message: "name or status is required"})
	}
	if in.Name != nil {
		errs = checkRule(errs, "name", *in.Name, campaignNameRule)
	}
	errs = checkStatus(errs, in.Status)
	if len(errs) > 0 {
		return validationFailed(errs)
	}
	camp, err := a.db(c).UpdateCampaign(c.Request().Context(), db.UpdateCampaignParams{
		Name: in.Name, Status: in.Status, ID: id, UserID: userID(c),
	})
	if errors.Is(err, db.ErrNotFound) {
		return notFound("campaign")
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toCampaign(camp))
}

func (a *API) deleteCampaign(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	n, err := a.db(c).DeleteCampaign(c.Request().Context(), db.DeleteCampaignParams{ID: id, UserID: userID(c)})
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("campaign")
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) getCampaignSummary(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	s, err := a.db(c).GetCampaignSummary(c.Request().Context(), db.GetCampaignSummaryParams{CampaignID: id, UserID: userID(c)})
	if errors.Is(err, db.ErrNotFound) {
		return notFound("campaign")
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, newSummary(counts{s.Total, s.Opened, s.Replied, s.Sent, s.Bounced, s.Failed}))
}

// getCampaignDailyStats counts emails created, sent, opened and replied per UTC day over the last days days,
// today included. The range is whole UTC days so that every request of one
// day asks the same question, which is what lets the cache answer it.
func (a *API) getCampaignDailyStats(c echo.Context) error {
	days, err := queryRule(c, daysRule)
	if err != nil {
		return err
	}
	camp, err := a.ownCampaign(c)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	since, until := today.AddDate(0, 0, -(days-1)), today.AddDate(0, 0, 1)
	rows, err := a.db(c).GetCampaignDailyCounts(c.Request().Context(), db.GetCampaignDailyCountsParams{
		CampaignID: camp.ID, Since: since, Until: until,
	})
	if err != nil {
		return err
	}
	byDay := make(map[string]dayCountJSON, len(rows))
	for _, r := range rows {
		day := r.Day.UTC().Format(time.DateOnly)
		byDay[day] = dayCountJSON{Day: day, Count: r.Count, Sent: r.Sent, Opened: r.Opened, Replied: r.Replied}
	}
	out := make([]dayCountJSON, 0, days)
	for d := since; d.Before(until); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		row, ok := byDay[day]
		if !ok {
			row = dayCountJSON{Day: day}
		}
		out = append(out, row)
	}
	return writeJSON(c, http.StatusOK, out)
}

func (a *API) getMyStatistics(c echo.Context) error {
	s, err := a.db(c).GetUserStatistics(c.Request().Context(), userID(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, statisticsJSON{Campaigns: s.Campaigns, Emails: s.Emails, Opened: s.Opened, Replied: s.Replied})
}

func (a *API) getMe(c echo.Context) error {
	u, err := a.db(c).GetUser(c.Request().Context(), userID(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toUser(u))
}
