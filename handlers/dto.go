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
	BouncedAt  *time.Time `json:"bounced_at"`
	// BounceReason is the provider's reason of a bounce, when it gave one.
	BounceReason *string `json:"bounce_reason,omitempty" description:"The reason a bounced event gave, if any."`
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
		Status: string(e.Status), SentAt: utcPtr(e.SentAt), IsOpened: e.IsOpened, OpenedAt: utcPtr(e.OpenedAt),
		IsReplied: e.IsReplied, RepliedAt: utcPtr(e.RepliedAt), CreatedAt: e.CreatedAt.UTC(),
		BouncedAt: utcPtr(e.BouncedAt), BounceReason: e.BounceReason,
	}
}

func toEmailEnvelope(e db.ListCampaignEmailsRow) emailJSON {
	return emailJSON{
		ID: e.ID, CampaignID: e.CampaignID, Recipient: e.Recipient, Subject: e.Subject,
		Status: string(e.Status), SentAt: utcPtr(e.SentAt), IsOpened: e.IsOpened, OpenedAt: utcPtr(e.OpenedAt),
		IsReplied: e.IsReplied, RepliedAt: utcPtr(e.RepliedAt), CreatedAt: e.CreatedAt.UTC(),
		BouncedAt: utcPtr(e.BouncedAt), BounceReason: e.BounceReason,
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
	// The send lifecycle: emails with a sent_at, and in status bounced or
	// failed. BounceRate is bounced over sent (a bounce stamps sent_at).
	Sent       int64   `json:"sent" minimum:"0"`
	Bounced    int64   `json:"bounced" minimum:"0"`
	Failed     int64   `json:"failed" minimum:"0"`
	BounceRate float64 `json:"bounce_rate" minimum:"0" maximum:"1" description:"bounced / sent; 0 before the first send."`
}

// counts are a campaign's counters as the queries return them.
type counts struct{ total, opened, replied, sent, bounced, failed int64 }

// newSummary computes the rates of a campaign's counts.
func newSummary(n counts) summaryJSON {
	out := summaryJSON{Total: n.total, Opened: n.opened, Replied: n.replied, Sent: n.sent, Bounced: n.bounced, Failed: n.failed}
	if n.total > 0 {
		out.OpenRate = float64(n.opened) / float64(n.total)
		out.ReplyRate = float64(n.replied) / float64(n.total)
	}
	if n.sent > 0 {
		out.BounceRate = min(1, float64(n.bounced)/float64(n.sent))
	}
	return out
}

type dayCountJSON struct {
	Day string `json:"day" format:"date"`
	// Count is the emails created that day (the field clients had before
	// the send lifecycle); the others count by their own times.
	Count   int64 `json:"count" minimum:"0" description:"Emails created that day."`
	Sent    int64 `json:"sent" minimum:"0" description:"Emails sent that day (by sent_at)."`
	Opened  int64 `json:"opened" minimum:"0" description:"Emails first opened that day (by opened_at)."`
	Replied int64 `json:"replied" minimum:"0" description:"Emails first replied to that day (by replied_at)."`
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
