// Package api is the HTTP contract of Lanyard, generated from ../openapi.yaml
// by oapi-codegen: models, the gin strict server interface and the embedded
// spec. Do not edit api.gen.go; change openapi.yaml and run go generate.
package api

//go:generate go tool oapi-codegen -config cfg.yaml ../openapi.yaml
