package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/lanyard-id/lanyard/internal/config"
	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/mail"
)

// newPostman builds the configured delivery: the SMTP relay, or the log
// without LANYARD_SMTP_URL.
func newPostman(cfg config.Config, log *slog.Logger) (identity.Postman, error) {
	templates, err := mail.LoadTemplates(cfg.MailTemplatesDir)
	if err != nil {
		return nil, &config.Error{Variable: "LANYARD_MAIL_TEMPLATES_DIR", Reason: err.Error()}
	}
	p := mail.Postman{Templates: templates, From: cfg.MailFrom, AppName: cfg.AppName, Log: log}
	if cfg.SMTP != nil {
		p.Sender = mail.NewSMTPSender(*cfg.SMTP)
	}
	return p, nil
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
