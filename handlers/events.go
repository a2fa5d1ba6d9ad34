package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/ingest"
)

// MaxBulkEvents bounds one POST /api/v1/events.
const MaxBulkEvents = 1000

type eventInput struct {
	ID      string `json:"id" required:"true" format:"uuid" description:"The event's id, chosen by the sender: an id sent again (a retry) is a duplicate and changes nothing."`
	EmailID string `json:"email_id" required:"true" format:"uuid"`
	Kind    string `json:"kind" required:"true" enum:"sent,opened,replied,bounced,failed"`
	At      string `json:"at" required:"true" format:"date-time" description:"When it happened (RFC 3339); the first opened/replied/sent time recorded stays."`
	Reason  string `json:"reason,omitempty" maxLength:"1000" description:"A bounce's or failure's reason."`
}

type bulkEventsInput struct {
	Events []eventInput `json:"events" required:"true" minItems:"1" maxItemsOf:"MaxBulkEvents"`
}

type eventResultJSON struct {
	ID     uuid.UUID `json:"id" format:"uuid"`
	Result string    `json:"result" enum:"applied,duplicate,not_found,refused" description:"applied: recorded and applied; duplicate: this id was sent before; not_found: no such email of yours; refused: contradicts the email's terminal status (bounced vs failed, or sent after failed) and changed nothing."`
	// Status is the email's delivery status after the event, when it
	// reached the email (applied or refused).
	Status string `json:"status,omitempty" enum:"queued,sent,bounced,failed" description:"The email's delivery status after the event (applied and refused only)."`
}

type eventResultsJSON struct {
	Results   []eventResultJSON `json:"results" description:"One per event, in the request's order."`
	Applied   int               `json:"applied" minimum:"0"`
	Duplicate int               `json:"duplicate" minimum:"0"`
	NotFound  int               `json:"not_found" minimum:"0"`
	Refused   int               `json:"refused" minimum:"0"`
}

// postEvents records up to MaxBulkEvents events in the batches of the
// event batcher. It answers 200 once every event's batch committed, with
// one result per event: the request as a whole succeeded, and an event
// that did not apply is data about that event, not a failure of the
// request (a 207 Multi-Status would say the same with WebDAV's body
// shape, which JSON clients do not read). docs/writes.md has the rest.
func (a *API) postEvents(c echo.Context) error {
	var in bulkEventsInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	events, errs := checkEvents(in.Events, userID(c))
	if len(errs) > 0 {
		return validationFailed(errs)
	}
	if err := a.chargeEvents(c, len(events)); err != nil {
		return err
	}
	results, err := a.events.Submit(c.Request().Context(), events)
	if err != nil {
		return err
	}
	out := eventResultsJSON{Results: make([]eventResultJSON, len(results))}
	for i, r := range results {
		out.Results[i] = eventResultJSON{ID: events[i].ID, Result: string(r.Outcome)}
		if r.Email != nil && (r.Outcome == ingest.Applied || r.Outcome == ingest.Refused) {
			out.Results[i].Status = string(r.Email.Status)
		}
		switch r.Outcome {
		case ingest.Applied:
			out.Applied++
		case ingest.Duplicate:
			out.Duplicate++
		case ingest.NotFound:
			out.NotFound++
		case ingest.Refused:
			out.Refused++
		}
	}
	return writeJSON(c, http.StatusOK, out)
}

// checkEvents validates a bulk request's events field by field; any
// invalid one fails the request (400) before anything is written.
func checkEvents(in []eventInput, user uuid.UUID) ([]ingest.Event, []FieldError) {
	var errs []FieldError
	switch {
	case len(in) == 0:
		return nil, []FieldError{{Field: "events", Message: "at least one event is required"}}
	case len(in) > MaxBulkEvents:
		return nil, []FieldError{{Field: "events", Message: fmt.Sprintf("at most %d events per request, got %d", MaxBulkEvents, len(in))}}
	}
	out := make([]ingest.Event, len(in))
	for i, e := range in {
		field := func(name string) string { return fmt.Sprintf("events[%d].%s", i, name) }
		ev := ingest.Event{UserID: user, Kind: db.EmailEventKind(e.Kind), Reason: e.Reason}
		var err error
		if ev.ID, err = uuid.Parse(e.ID); err != nil {
			errs = append(errs, FieldError{Field: field("id"), Message: "must be a UUID"})
		}
		if ev.EmailID, err = uuid.Parse(e.EmailID); err != nil {
			errs = append(errs, FieldError{Field: field("email_id"), Message: "must be a UUID"})
		}
		if !ev.Kind.Valid() {
			errs = append(errs, FieldError{Field: field("kind"), Message: "must be one of " + kindNames()})
		}
		if ev.At, err = time.Parse(time.RFC3339Nano, e.At); err != nil {
			errs = append(errs, FieldError{Field: field("at"), Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"})
		}
		if len(e.Reason) > ingest.MaxReasonLen {
			errs = append(errs, FieldError{Field: field("reason"), Message: fmt.Sprintf("at most %d bytes", ingest.MaxReasonLen)})
		}
		out[i] = ev
	}
	return out, errs
}

func kindNames() string {
	var names []string
	for _, k := range db.AllEmailEventKindValues() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// singleEventNamespace derives the event id of the single-event routes:
// one id per email and kind, so that a repeated open of one email is a
// duplicate (found by its key, with no write to the email).
var singleEventNamespace = uuid.MustParse("6f1c3a52-9a53-4c1e-8f0e-2b7d1c6e5a10")

func singleEventID(email uuid.UUID, kind db.EmailEventKind) uuid.UUID {
	return uuid.NewSHA1(singleEventNamespace, append(email[:len(email):len(email)], string(kind)...))
}

// markEmail records one event of the email in the path through the
// batcher and answers with the email as it is after it (404 when it is
// not the caller's).
func (a *API) markEmail(c echo.Context, kind db.EmailEventKind) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	ev := ingest.Event{ID: singleEventID(id, kind), UserID: userID(c), EmailID: id, Kind: kind, At: a.now()}
	res, err := a.events.Submit(c.Request().Context(), []ingest.Event{ev})
	if err != nil {
		return err
	}
	switch r := res[0]; {
	case r.Outcome == ingest.NotFound:
		return notFound("email")
	case r.Email != nil:
		return writeJSON(c, http.StatusOK, toEmail(*r.Email))
	default:
		// Not reached today: every outcome but not_found carries its
		// email. Kept so that a result without one still answers right.
		return a.getEmail(c)
	}
}
