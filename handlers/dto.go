package handlers

import (
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

// The JSON shapes of the API. They are separate from the sqlc models so that
// a column added to a table never leaks into responses unannounced. The
// OpenAPI document is reflected from them: every field without omitempty is
// required there, and tags add formats, ranges and enums.

type userJSON struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	IsActive  bool      `json:"is_active"`
	CreatedAt time.Time `json:"created_at"`
}

func toUser(u db.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, IsActive: u.IsActive, CreatedAt: u.CreatedAt.UTC()}
}

type campaignJSON struct {
	ID        uuid.UUID         `json:"id"`
	Name      string            `json:"name"`
	Status    db.CampaignStatus `json:"status"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Stats are present in list pages asked for with include=stats.
	Stats *summaryJSON `json:"stats,omitempty" description:"Present when the page was asked for with include=stats."`
}

func toCampaign(c db.Campaign) campaignJSON {
	return campaignJSON{ID: c.ID, Name: c.Name, Status: c.Status, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
}

type emailJSON struct {
	ID         uuid.UUID  `json:"id"`
	CampaignID uuid.UUID  `json:"campaign_id"`
	Recipient  string     `json:"recipient"`
	Subject    string     `json:"subject"`
	Body       *string    `json:"body,omitempty" description:"Present on single-email responses, absent in lists."`
	Status     string     `json:"status" enum:"queued,sent,bounced,failed"`
	SentAt     *time.Time `json:"sent_at"`
	IsOpened   bool       `json:"is_opened"`
	OpenedAt   *time.Time `json:"opened_at"`
	IsReplied  bool       `json:"is_replied"`
	RepliedAt  *time.Time `json:"replied_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toEmail(e db.Email) emailJSON {
	body := e.Body
	return emailJSON{
		ID: e.ID, CampaignID: e.CampaignID, Recipient: e.Recipient, Subject: e.Subject, Body: &body,
		Status: e.Status, SentAt: utcPtr(e.SentAt), IsOpened: e.IsOpened, OpenedAt: utcPtr(e.OpenedAt),
		IsReplied: e.IsReplied, RepliedAt: utcPtr(e.RepliedAt), CreatedAt: e.CreatedAt.UTC(),
	}
}

func toEmailEnvelope(e db.ListCampaignEmailsRow) emailJSON {
	return emailJSON{
		ID: e.ID, CampaignID: e.CampaignID, Recipient: e.Recipient, Subject: e.Subject,
		Status: e.Status, SentAt: utcPtr(e.SentAt), IsOpened: e.IsOpened, OpenedAt: utcPtr(e.OpenedAt),
		IsReplied: e.IsReplied, RepliedAt: utcPtr(e.RepliedAt), CreatedAt: e.CreatedAt.UTC(),
	}
}

type apiKeyJSON struct {
	ID        uuid.UUID  `json:"id"`
	UserID    uuid.UUID  `json:"user_id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix" description:"The key's first characters, to recognise it later."`
	Key       string     `json:"key,omitempty" description:"The key itself. Shown once; only its SHA-256 is stored."`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// RateLimitPerMinute is the key's own budget; absent: the default.
	RateLimitPerMinute *int32 `json:"rate_limit_per_minute,omitempty" minimum:"1" description:"The key's own budget; absent: the server default."`
}

type summaryJSON struct {
	Total     int64   `json:"total" minimum:"0"`
	Opened    int64   `json:"opened" minimum:"0"`
	Replied   int64   `json:"replied" minimum:"0"`
	OpenRate  float64 `json:"open_rate" minimum:"0" maximum:"1"`
	ReplyRate float64 `json:"reply_rate" minimum:"0" maximum:"1"`
}

// newSummary computes the rates of a campaign's counts.
func newSummary(total, opened, replied int64) summaryJSON {
	out := summaryJSON{Total: total, Opened: opened, Replied: replied}
	if total > 0 {
		out.OpenRate = float64(opened) / float64(total)
		out.ReplyRate = float64(replied) / float64(total)
	}
	return out
}

type dayCountJSON struct {
	Day   string `json:"day" format:"date"`
	Count int64  `json:"count" minimum:"0"`
}

type statisticsJSON struct {
	Campaigns int64 `json:"campaigns" minimum:"0"`
	Emails    int64 `json:"emails" minimum:"0"`
	Opened    int64 `json:"opened" minimum:"0"`
	Replied   int64 `json:"replied" minimum:"0"`
}

type insertedJSON struct {
	Inserted int64 `json:"inserted" minimum:"0"`
}
