// Package lanyardclient is a Go client for Lanyard's HTTP API, generated
// from ../../../openapi.yaml by oapi-codegen: models, Client and
// ClientWithResponses. Do not edit client.gen.go; change openapi.yaml and
// run go generate (CI checks that the committed file is up to date).
package lanyardclient

//go:generate go tool oapi-codegen -config cfg.yaml ../../../openapi.yaml
