package mail

import (
	"context"
	"errors"
	"log/slog"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// Postman delivers the outbox's mails (identity.Postman): it renders each
// with the templates and hands it to the SMTP relay, or, without one
// (development), logs it with its link and sends nothing.
type Postman struct {
	Templates *Templates
	// Sender is the SMTP relay; nil logs each mail instead.
	Sender  Sender
	From    string // LANYARD_MAIL_FROM
	AppName string
	Log     *slog.Logger // for the development mode
}

var _ identity.Postman = Postman{}

// Deliver implements identity.Postman.
func (p Postman) Deliver(ctx context.Context, id, kind, to string, data identity.MailData) error {
	subject, text, html, err := p.Templates.Render(Kind(kind), Data{
		AppName: p.AppName, Email: data.Email, NewEmail: data.NewEmail, Link: data.Link, ExpiresIn: data.ExpiresIn,
	})
	if err != nil {
		return unrenderable{err}
	}
	if p.Sender == nil {
		p.Log.InfoContext(ctx, "mail not sent: LANYARD_SMTP_URL is not set (development); follow the link by hand",
			"mail_id", id, "kind", kind, "to", to, "subject", subject, "link", data.Link)
		return nil
	}
	return p.Sender.Send(ctx, Message{ID: id, From: p.From, To: to, Subject: subject, Text: text, HTML: html})
}

// Permanent implements identity.Postman: a refusal retrying cannot fix.
func (Postman) Permanent(err error) bool {
	var u unrenderable
	return errors.As(err, &u) || IsPermanent(err)
}

// unrenderable is a mail whose template fails: sending it again fails too.
type unrenderable struct{ error }

func (u unrenderable) Unwrap() error { return u.error }
