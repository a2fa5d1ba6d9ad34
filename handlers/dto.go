package handlers

import (
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

// The JSON shapes of the API. They are separate from the sqlc models so that
// a column added to a table never leaks into responses unannounced.

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
}

func toCampaign(c db.Campaign) campaignJSON {
	return campaignJSON{ID: c.ID, Name: c.Name, Status: c.Status, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
}

type emailJSON struct {
	ID         uuid.UUID  `json:"id"`
	CampaignID uuid.UUID  `json:"campaign_id"`
	Recipient  string     `json:"recipient"`
	Subject    string     `json:"subject"`
	Body       *string    `json:"body,omitempty"`
	Status     string     `json:"status"`
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
	Prefix    string     `json:"prefix"`
	Key       string     `json:"key,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

type summaryJSON struct {
	Total     int64   `json:"total"`
	Opened    int64   `json:"opened"`
	Replied   int64   `json:"replied"`
	OpenRate  float64 `json:"open_rate"`
	ReplyRate float64 `json:"reply_rate"`
}

type dayCountJSON struct {
	Day   string `json:"day"`
	Count int64  `json:"count"`
}

type statisticsJSON struct {
	Campaigns int64 `json:"campaigns"`
	Emails    int64 `json:"emails"`
	Opened    int64 `json:"opened"`
	Replied   int64 `json:"replied"`
}
