package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/mail"
)

// smtpPostman renders outbox mails with the templates and hands them to
// the SMTP relay.
type smtpPostman struct {
	templates *mail.Templates
	sender    mail.Sender
	from      string
	appName   string
}

func (p smtpPostman) Deliver(ctx context.Context, id, kind, to string, data identity.MailData) error {
	subject, text, html, err := p.templates.Render(mail.Kind(kind), mailData(p.appName, data))
	if err != nil {
		return permanent{err}
	}
	return p.sender.Send(ctx, mail.Message{ID: id, From: p.from, To: to, Subject: subject, Text: text, HTML: html})
}

func (p smtpPostman) Permanent(err error) bool {
	var perm permanent
	return errors.As(err, &perm) || mail.IsPermanent(err)
}

// permanent marks a failure retrying cannot fix (a template that does not
// render).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// logPostman is the development default without LANYARD_SMTP_URL: it logs
// each mail with its link, so a developer can follow it, and sends nothing.
type logPostman struct {
	templates *mail.Templates
	appName   string
	log       *slog.Logger
}

func (p logPostman) Deliver(ctx context.Context, id, kind, to string, data identity.MailData) error {
	subject, _, _, err := p.templates.Render(mail.Kind(kind), mailData(p.appName, data))
	if err != nil {
		return permanent{err}
	}
	p.log.InfoContext(ctx, "mail not sent: LANYARD_SMTP_URL is not set (development); follow the link by hand",
		"mail_id", id, "kind", kind, "to", to, "subject", subject, "link", data.Link)
	return nil
}

func (logPostman) Permanent(err error) bool {
	var perm permanent
	return errors.As(err, &perm)
}

func mailData(appName string, d identity.MailData) mail.Data {
	return mail.Data{AppName: appName, Email: d.Email, NewEmail: d.NewEmail, Link: d.Link, ExpiresIn: d.ExpiresIn}
}

// newPostman builds the configured delivery.
func newPostman(cfg config.Config, log *slog.Logger) (identity.Postman, error) {
	templates, err := mail.LoadTemplates(cfg.MailTemplatesDir)
	if err != nil {
		return nil, &config.Error{Variable: "LANYARD_MAIL_TEMPLATES_DIR", Reason: err.Error()}
	}
	if cfg.SMTP == nil {
		return logPostman{templates: templates, appName: cfg.AppName, log: log}, nil
	}
	return smtpPostman{templates: templates, sender: mail.NewSMTPSender(*cfg.SMTP), from: cfg.MailFrom, appName: cfg.AppName}, nil
}

// sendMail delivers the outbox: at once when this replica wrote a mail,
// and every interval for mails other replicas wrote or that wait for a
// retry. Every replica runs it; claims keep two from sending one mail.
func sendMail(ctx context.Context, interval time.Duration, svc *identity.Service, postman identity.Postman, log *slog.Logger) {
	claim := uuid.NewString()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		for {
			n, err := svc.DeliverMail(ctx, postman, claim)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("mail delivery paused: the outbox is unreachable", "error", err)
				}
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-svc.MailWritten():
		}
	}
}
