package seed

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

var emailColumns = []string{
	"id", "campaign_id", "recipient", "subject", "body", "status",
	"sent_at", "is_opened", "opened_at", "is_replied", "replied_at", "created_at",
}

var (
	firstNames = []string{"ada", "grace", "alan", "linus", "margaret", "ken", "barbara", "dennis", "frances", "edsger", "radia", "john", "sophie", "tim", "katherine", "guido"}
	lastNames  = []string{"lovelace", "hopper", "turing", "torvalds", "hamilton", "thompson", "liskov", "ritchie", "allen", "dijkstra", "perlman", "backus", "wilson", "berners-lee", "johnson", "van-rossum"}
	companies  = []string{"acme", "globex", "initech", "umbrella", "hooli", "piedpiper", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent"}
	tlds       = []string{"com", "io", "co", "dev", "org", "net"}
	subjects   = []string{
		"Quick question about %s", "Idea for %s's outreach", "%s + ReplyRocket?", "Following up, %s",
		"Can I send you a 2-minute video, %s?", "Saw your post about %s", "Worth a chat, %s?",
	}
	campaignThemes = []string{"Q%d founders outreach", "Agency partners wave %d", "Webinar follow-up %d", "Churned customers win-back %d", "Series A SaaS leads %d", "Conference attendees %d"}
	// Every status of the schema's enum, as sqlc generated it.
	statuses = db.AllCampaignStatusValues()
)

func personName(r *rand.Rand) string {
	f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	return string(f[0]-'a'+'A') + f[1:] + " " + string(l[0]-'a'+'A') + l[1:]
}

func campaignName(i int) string {
	return fmt.Sprintf(campaignThemes[i%len(campaignThemes)], i/len(campaignThemes)+1)
}

func campaignStatus(i int) db.CampaignStatus { return statuses[i%len(statuses)] }

// generator is a pgx.CopyFromSource that makes one campaign's emails as COPY
// asks for them: no batch is ever held in memory.
type generator struct {
	campaign uuid.UUID
	n, i     int
	from     time.Time
	span     time.Duration
	now      time.Time
	r        *rand.Rand
	done     *atomic.Int64
	counted  int64
	row      [12]any
}

func newGenerator(campaign uuid.UUID, n int, from, now time.Time, r *rand.Rand, done *atomic.Int64) *generator {
	return &generator{campaign: campaign, n: n, from: from, span: now.Sub(from), now: now, r: r, done: done}
}

// countEvery batches updates of the shared counter: an atomic add per row
// would be the hottest line of a 10-million-row load.
const countEvery = 1024

func (g *generator) Next() bool {
	if g.i == g.n {
		g.done.Add(g.counted)
		g.counted = 0
		return false
	}
	g.i++
	g.counted++
	if g.counted == countEvery {
		g.done.Add(g.counted)
		g.counted = 0
	}
	g.fill()
	return true
}

// fill makes one email. Proportions follow cold outreach: most mail is
// sent, a few percent bounce or fail, about 40 % of sent mail is opened and
// about one open in seven gets a reply; mail from the last day may still be
// queued.
func (g *generator) fill() {
	r := g.r
	// Stratified: the i-th email falls at a random point of the i-th of n
	// equal slices of the range. The spread is as even as uniform sampling,
	// but times only grow, so COPY appends to each partition's indexes in
	// order instead of scattering inserts across them (several times faster
	// on large loads).
	slice := float64(g.span) / float64(g.n)
	created := g.from.Add(time.Duration((float64(g.i-1) + r.Float64()) * slice))
	id, createdAt := db.NewEmailID(created)
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	company := companies[r.IntN(len(companies))]
	recipient := first + "." + last + "@" + company + "." + tlds[r.IntN(len(tlds))]
	subject := fmt.Sprintf(subjects[r.IntN(len(subjects))], company)
	body := "Hi " + first + ",\n\nI noticed " + company + " is growing its sales team. We help teams like yours book more meetings from cold email.\n\nWorth a quick chat next week?\n\nBest,\nSam"

	status := "sent"
	var sentAt, openedAt, repliedAt *time.Time
	opened, replied := false, false
	switch p := r.IntN(100); {
	case g.now.Sub(createdAt) < 24*time.Hour && p < 30:
		status = "queued"
	case p < 3:
		status = "bounced"
	case p < 4:
		status = "failed"
	}
	if status != "queued" {
		s := createdAt.Add(time.Duration(1+r.IntN(600)) * time.Second)
		sentAt = &s
	}
	if status == "sent" && r.IntN(100) < 40 {
		o := sentAt.Add(time.Duration(5+r.IntN(72*60)) * time.Minute)
		if o.Before(g.now) {
			opened, openedAt = true, &o
			if r.IntN(7) == 0 {
				rep := o.Add(time.Duration(10+r.IntN(48*60)) * time.Minute)
				if rep.Before(g.now) {
					replied, repliedAt = true, &rep
				}
			}
		}
	}
	g.row = [12]any{id, g.campaign, recipient, subject, body, status, sentAt, opened, openedAt, replied, repliedAt, createdAt}
}

func (g *generator) Values() ([]any, error) { return g.row[:], nil }

func (g *generator) Err() error { return nil }
