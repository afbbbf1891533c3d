package httpapi

import (
	"context"

	"github.com/lanyard-id/lanyard/api"
	"github.com/lanyard-id/lanyard/internal/identity"
)

// ListMyEvents answers GET /v1/me/events: the caller's own newest security
// events. Of an event caused by an administrator or by Lanyard itself only
// the kind of actor is shown, never the operator's address or client.
func (h *handlers) ListMyEvents(ctx context.Context, _ api.ListMyEventsRequestObject) (api.ListMyEventsResponseObject, error) {
	sc := scopeOf(ctx)
	events, err := h.s.deps.Service.MyEvents(sc.work, sc.claims)
	if err != nil {
		return nil, err
	}
	out := make([]api.SecurityEvent, len(events))
	for i, e := range events {
		ev := api.SecurityEvent{
			Id: e.ID, Type: e.Type, At: e.At, Actor: api.SecurityEventActor(e.Actor),
			Details: orEmpty(e.Details),
		}
		if e.Actor == identity.ActorUser {
			ev.Ip, ev.UserAgent = e.IP, e.UserAgent
		}
		out[i] = ev
	}
	return api.ListMyEvents200JSONResponse{
		Headers: api.ListMyEvents200ResponseHeaders{CacheControl: "no-store"},
		Body:    api.SecurityEventList{Events: out},
	}, nil
}
