package ingest

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

type eventKey struct{ user, event uuid.UUID }

type ownedKey struct{ user, email uuid.UUID }

// apply runs one batch as one statement (ApplyEmailEvents: its own
// implicit transaction, so one round trip and no BEGIN or COMMIT of
// ours): record the events (skipping known ids and other users' or
// unknown emails) and apply the recorded ones; then, for the events it did
// not record, tell duplicates from unknown emails. Lock order, the same in
// every batch: emails rows in id order, email_events keys in (user_id,
// event_id) order, then counter rows in campaign_id order (the trigger's)
// — so overlapping batches wait for each other and never deadlock; a
// deadlock with another kind of write is retried (db.Retry), the
// statement having written nothing.
func apply(ctx context.Context, store db.Store, events []Event) ([]Result, error) {
	results := make([]Result, len(events))
	// An id twice in one batch: only its first event goes to the
	// database; the others take its outcome (a duplicate, once it was
	// recorded).
	first := make(map[eventKey]int, len(events))
	var arg db.ApplyEmailEventsParams
	for i, e := range events {
		k := eventKey{e.UserID, e.ID}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		arg.UserIds = append(arg.UserIds, e.UserID)
		arg.EventIds = append(arg.EventIds, e.ID)
		arg.EmailIds = append(arg.EmailIds, e.EmailID)
		arg.Kinds = append(arg.Kinds, string(e.Kind))
		arg.Ats = append(arg.Ats, e.At)
		arg.Reasons = append(arg.Reasons, e.Reason)
	}
	var rows []db.ApplyEmailEventsRow
	err := db.Retry(ctx, 0, func() (err error) {
		rows, err = store.ApplyEmailEvents(ctx, arg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply a batch of %d events: %w", len(events), err)
	}
	// The events recorded now, each with its email after the batch.
	recorded := make(map[eventKey]*db.Email, len(arg.EventIds))
	for i := range rows {
		email := appliedEmail(rows[i])
		for _, id := range rows[i].EventIds {
			recorded[eventKey{rows[i].UserID, id}] = email
		}
	}
	var unrecorded []int
	for i, e := range events {
		k := eventKey{e.UserID, e.ID}
		switch email := recorded[k]; {
		case first[k] != i:
		case email != nil:
			if email.ID != e.EmailID {
				// The statement records an event only on its own email.
				return nil, fmt.Errorf("apply a batch of %d events: event %s recorded on email %s, not on its own %s", len(events), e.ID, email.ID, e.EmailID)
			}
			results[i] = Result{Outcome: outcome(e, email), Email: email}
		default:
			unrecorded = append(unrecorded, i)
		}
	}
	if err := classifyUnrecorded(ctx, store, events, unrecorded, results); err != nil {
		return nil, fmt.Errorf("apply a batch of %d events: classify %d not recorded: %w", len(events), len(unrecorded), err)
	}
	for i, e := range events {
		if f := first[eventKey{e.UserID, e.ID}]; f != i {
			results[i] = Result{Outcome: results[f].Outcome, Email: results[f].Email}
			if o := results[f].Outcome; o == Applied || o == Refused {
				results[i].Outcome = Duplicate
			}
		}
	}
	return results, nil
}

// classifyUnrecorded sets the outcome of the events ApplyEmailEvents did
// not record: a duplicate when the email is the user's, with the email as
// it is (a repeated single event answers with it), not found otherwise (an
// unknown email, or another user's). It reads after the batch committed,
// on the primary (dbroute's primaryReads), so a duplicate's email has the
// batch's changes.
func classifyUnrecorded(ctx context.Context, q db.Querier, events []Event, idx []int, results []Result) error {
	if len(idx) == 0 {
		return nil
	}
	var find db.FindOwnedEmailsParams
	for _, i := range idx {
		find.UserIds = append(find.UserIds, events[i].UserID)
		find.EmailIds = append(find.EmailIds, events[i].EmailID)
	}
	owned, err := q.FindOwnedEmails(ctx, find)
	if err != nil {
		return err
	}
	byKey := make(map[ownedKey]*db.Email, len(owned))
	for _, o := range owned {
		byKey[ownedKey{o.UserID, o.ID}] = ownedEmail(o)
	}
	for _, i := range idx {
		results[i] = Result{Outcome: NotFound}
		if email := byKey[ownedKey{events[i].UserID, events[i].EmailID}]; email != nil {
			results[i] = Result{Outcome: Duplicate, Email: email}
		}
	}
	return nil
}

// appliedEmail and ownedEmail copy sqlc's flat rows into db.Email.
// sqlc.embed(e) would return the Email itself, but dbgen reads a write's
// RETURNING by column, and an embedded row's values would bump every
// scope of ApplyEmailEvents table-wide (tried); the copy is the price.
func appliedEmail(r db.ApplyEmailEventsRow) *db.Email {
	return &db.Email{
		ID: r.ID, CampaignID: r.CampaignID, Recipient: r.Recipient, Subject: r.Subject, Body: r.Body,
		Status: r.Status, SentAt: r.SentAt, IsOpened: r.IsOpened, OpenedAt: r.OpenedAt,
		IsReplied: r.IsReplied, RepliedAt: r.RepliedAt, CreatedAt: r.CreatedAt,
		BouncedAt: r.BouncedAt, BounceReason: r.BounceReason,
	}
}

func ownedEmail(o db.FindOwnedEmailsRow) *db.Email {
	return &db.Email{
		ID: o.ID, CampaignID: o.CampaignID, Recipient: o.Recipient, Subject: o.Subject, Body: o.Body,
		Status: o.Status, SentAt: o.SentAt, IsOpened: o.IsOpened, OpenedAt: o.OpenedAt,
		IsReplied: o.IsReplied, RepliedAt: o.RepliedAt, CreatedAt: o.CreatedAt,
		BouncedAt: o.BouncedAt, BounceReason: o.BounceReason,
	}
}

// outcome tells an applied event from a refused one by the email's state
// after the batch (ApplyEmailEvents' transitions): bounced and failed are
// terminal and exclude each other; a send changes nothing on a failed
// email unless it is the send that stamped sent_at (one that came with
// the failure, in the same batch).
func outcome(e Event, row *db.Email) Outcome {
	switch e.Kind {
	case db.EmailEventKindBounced:
		if row.Status != db.DeliveryStatusBounced {
			return Refused
		}
	case db.EmailEventKindFailed:
		if row.Status != db.DeliveryStatusFailed {
			return Refused
		}
	case db.EmailEventKindSent:
		if row.Status == db.DeliveryStatusFailed && (row.SentAt == nil || !row.SentAt.Equal(e.At)) {
			return Refused
		}
	}
	return Applied
}
