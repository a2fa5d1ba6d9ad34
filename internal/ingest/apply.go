package ingest

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

type eventKey struct{ user, event uuid.UUID }

type ownedKey struct{ user, email uuid.UUID }

// apply runs one batch in one transaction: record the events (skipping
// known ids and other users' or unknown emails), tell duplicates from
// unknown emails for those not recorded, and apply the recorded ones.
// Lock order, the same in every batch: email_events keys in (user_id,
// event_id) order, then emails rows in id order, then counter rows in
// campaign_id order (the trigger's) — so overlapping batches wait for
// each other and never deadlock. A retried transaction (InTx retries
// serialization failures and deadlocks) starts its results afresh.
func apply(ctx context.Context, store db.Store, events []Event) ([]Result, error) {
	var results []Result
	err := store.InTx(ctx, db.TxOptions{}, func(q db.Querier) error {
		var err error
		results, err = applyTx(ctx, q, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply a batch of %d events: %w", len(events), err)
	}
	return results, nil
}

func applyTx(ctx context.Context, q db.Querier, events []Event) ([]Result, error) {
	results := make([]Result, len(events))
	// An id twice in one batch: only its first event goes to the
	// database; the others take its outcome (a duplicate, once it was
	// recorded).
	first := make(map[eventKey]int, len(events))
	var rec db.RecordEmailEventsParams
	for i, e := range events {
		k := eventKey{e.UserID, e.ID}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		rec.UserIds = append(rec.UserIds, e.UserID)
		rec.EventIds = append(rec.EventIds, e.ID)
		rec.EmailIds = append(rec.EmailIds, e.EmailID)
		rec.Kinds = append(rec.Kinds, string(e.Kind))
		rec.Ats = append(rec.Ats, e.At)
	}
	recorded, err := q.RecordEmailEvents(ctx, rec)
	if err != nil {
		return nil, err
	}
	fresh := make(map[eventKey]bool, len(recorded))
	for _, r := range recorded {
		fresh[eventKey{r.UserID, r.EventID}] = true
	}
	var apply db.ApplyEmailEventsParams
	var unrecorded []int
	for i, e := range events {
		k := eventKey{e.UserID, e.ID}
		switch {
		case first[k] != i:
		case fresh[k]:
			results[i].Outcome = Applied
			apply.EmailIds = append(apply.EmailIds, e.EmailID)
			apply.Kinds = append(apply.Kinds, string(e.Kind))
			apply.Ats = append(apply.Ats, e.At)
			apply.Reasons = append(apply.Reasons, e.Reason)
		default:
			unrecorded = append(unrecorded, i)
		}
	}
	if err := classifyUnrecorded(ctx, q, events, unrecorded, results); err != nil {
		return nil, err
	}
	if len(apply.EmailIds) > 0 {
		if err := applyRecorded(ctx, q, events, apply, results); err != nil {
			return nil, err
		}
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

// applyRecorded applies the recorded events to their emails and sets
// their results from the emails' rows after it.
func applyRecorded(ctx context.Context, q db.Querier, events []Event, apply db.ApplyEmailEventsParams, results []Result) error {
	rows, err := q.ApplyEmailEvents(ctx, apply)
	if err != nil {
		return err
	}
	byID := make(map[uuid.UUID]*db.Email, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	for i, e := range events {
		if results[i].Outcome != Applied {
			continue
		}
		row := byID[e.EmailID]
		if row == nil {
			// Recorded means the email existed and was the user's, in this
			// transaction: its row is locked and cannot have gone.
			return fmt.Errorf("email %s of a recorded event was not updated", e.EmailID)
		}
		results[i] = Result{Outcome: outcome(e, row), Email: row}
	}
	return nil
}

// classifyUnrecorded sets the outcome of the events RecordEmailEvents did
// not record: a duplicate when the email is the user's, with the email as
// it is (a repeated single event answers with it), not found otherwise (an
// unknown email, or another user's).
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
