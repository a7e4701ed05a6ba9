#!/usr/bin/env python3
"""Writes schemas.jsonl: JSON schemas of real-world shapes (API payloads, configs, nested and
recursive structures, tool arguments, formats), each with instances that validate and instances
that do not. Every instance is checked here with the `jsonschema` package (formats asserted), so
the corpus itself is right; test_json_schema.cpp then checks the grammars against it.

Valid instances are written the way the grammar generates JSON: properties in schema order, and
within the documented bounds (whole-number numeric bounds, at most 16 digits, no February 29).
"""
import json
import sys

import jsonschema

S = []


def add(name, schema, valid, invalid):
    S.append({"name": name, "schema": schema, "valid": valid, "invalid": invalid})


def obj(props, required=None, extra=False, **kw):
    s = {"type": "object", "properties": props}
    s["required"] = list(props) if required is None else required
    if extra is not None:
        s["additionalProperties"] = extra
    s.update(kw)
    return s


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}

# --- tool-call arguments -------------------------------------------------------------------------
add("weather", obj({"location": STR, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["location"]),
    [{"location": "Paris"}, {"location": "San Francisco, CA", "unit": "fahrenheit"}],
    [{}, {"location": "Paris", "unit": "kelvin"}, {"location": 3}, {"location": "x", "wind": True}])
add("web_search", obj({"query": {"type": "string", "minLength": 1, "maxLength": 200},
                       "num_results": {"type": "integer", "minimum": 1, "maximum": 20}}, ["query"]),
    [{"query": "llm inference"}, {"query": "a", "num_results": 20}],
    [{"query": ""}, {"query": "x", "num_results": 0}, {"query": "x", "num_results": 21}, {"num_results": 3}])
add("send_email", obj({"to": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1},
                       "subject": {"type": "string", "maxLength": 120}, "body": STR,
                       "cc": {"type": "array", "items": {"type": "string", "format": "email"}}}, ["to", "subject", "body"]),
    [{"to": ["bob@example.com"], "subject": "Hi", "body": "Hello"},
     {"to": ["a@b.io", "c.d@e.org"], "subject": "", "body": "", "cc": []}],
    [{"to": [], "subject": "Hi", "body": "x"}, {"to": ["bob"], "subject": "Hi", "body": "x"}, {"to": ["a@b.io"], "body": "x"}])
add("calendar_event", obj({"title": STR, "start": {"type": "string", "format": "date-time"},
                           "end": {"type": "string", "format": "date-time"},
                           "attendees": {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": 10},
                           "all_day": BOOL}, ["title", "start"]),
    [{"title": "Standup", "start": "2024-05-01T09:00:00Z"},
     {"title": "Launch", "start": "2024-12-31T23:59:59.123+02:00", "end": "2025-01-01T01:00:00Z", "attendees": ["x@y.com"], "all_day": False}],
    [{"title": "x", "start": "2024-05-01"}, {"title": "x", "start": "2024-13-01T00:00:00Z"}, {"start": "2024-05-01T09:00:00Z"}])
add("run_sql", obj({"query": STR, "database": {"enum": ["prod", "staging", "dev"]}, "timeout_s": {"type": "number", "minimum": 0, "maximum": 300}}),
    [{"query": "SELECT 1", "database": "dev", "timeout_s": 2.5}, {"query": "", "database": "prod", "timeout_s": 300}],
    [{"query": "x", "database": "test", "timeout_s": 1}, {"query": "x", "database": "dev", "timeout_s": 301}, {"query": "x", "database": "dev", "timeout_s": -1}])
add("create_ticket", obj({"title": {"type": "string", "minLength": 5, "maxLength": 80},
                          "priority": {"type": "string", "enum": ["low", "medium", "high", "urgent"]},
                          "labels": {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}, "maxItems": 5},
                          "assignee": {"type": ["string", "null"]}}, ["title", "priority"]),
    [{"title": "Crash on start", "priority": "high"}, {"title": "Typo!", "priority": "low", "labels": ["docs", "good-first-issue"], "assignee": None}],
    [{"title": "Bug", "priority": "high"}, {"title": "Crash on start", "priority": "critical"}, {"title": "Crash on start", "priority": "low", "labels": ["Docs"]}])
add("translate", obj({"text": STR, "source_lang": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"}, "target_lang": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"}}),
    [{"text": "hello", "source_lang": "en", "target_lang": "fr-CA"}],
    [{"text": "hello", "source_lang": "english", "target_lang": "fr"}, {"text": "hello", "source_lang": "en", "target_lang": "FR"}])
add("get_stock_price", obj({"symbol": {"type": "string", "pattern": "^[A-Z]{1,5}$"}, "exchange": {"enum": ["NYSE", "NASDAQ", "LSE"]}}, ["symbol"]),
    [{"symbol": "AAPL"}, {"symbol": "T", "exchange": "NYSE"}],
    [{"symbol": "aapl"}, {"symbol": "TOOLONG"}, {"symbol": "A", "exchange": "TSX"}])
add("set_thermostat", obj({"room": STR, "temperature": {"type": "number", "minimum": 5, "maximum": 35}, "mode": {"enum": ["heat", "cool", "auto", "off"]}}),
    [{"room": "kitchen", "temperature": 21.5, "mode": "auto"}, {"room": "a", "temperature": 35, "mode": "off"}],
    [{"room": "x", "temperature": 40, "mode": "heat"}, {"room": "x", "temperature": 20, "mode": "fan"}])
add("book_flight", obj({"from": {"type": "string", "pattern": "^[A-Z]{3}$"}, "to": {"type": "string", "pattern": "^[A-Z]{3}$"},
                        "date": {"type": "string", "format": "date"}, "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
                        "class": {"enum": ["economy", "premium", "business", "first"]}}, ["from", "to", "date"]),
    [{"from": "SFO", "to": "JFK", "date": "2024-07-04"}, {"from": "CDG", "to": "NRT", "date": "2025-02-28", "passengers": 2, "class": "business"}],
    [{"from": "SFO", "to": "JFK", "date": "2024-02-30"}, {"from": "sfo", "to": "JFK", "date": "2024-07-04"}, {"from": "SFO", "to": "JFK", "date": "2024-07-04", "passengers": 10}])

# --- API payloads --------------------------------------------------------------------------------
ADDRESS = obj({"street": STR, "city": STR, "postal_code": {"type": "string", "pattern": "^[0-9]{5}(-[0-9]{4})?$"},
               "country": {"type": "string", "minLength": 2, "maxLength": 2}}, ["street", "city", "country"])
add("address", ADDRESS,
    [{"street": "1 Main St", "city": "Springfield", "country": "US"}, {"street": "x", "city": "y", "postal_code": "12345-6789", "country": "FR"}],
    [{"street": "1 Main St", "city": "Springfield", "country": "USA"}, {"street": "x", "city": "y", "postal_code": "1234", "country": "FR"}, {"city": "y", "country": "FR"}])
USER = obj({"id": {"type": "string", "format": "uuid"}, "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "email": {"type": "string", "format": "email"}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "roles": {"type": "array", "items": {"enum": ["admin", "editor", "viewer"]}, "uniqueItems": False},
            "address": ADDRESS}, ["id", "name", "email"])
add("user", USER,
    [{"id": "123e4567-e89b-12d3-a456-426614174000", "name": "Ada", "email": "ada@example.com"},
     {"id": "00000000-0000-0000-0000-000000000000", "name": "B", "email": "b@c.de", "age": 36, "roles": ["admin", "viewer"],
      "address": {"street": "s", "city": "c", "country": "GB"}}],
    [{"id": "not-a-uuid", "name": "Ada", "email": "ada@example.com"}, {"id": "123e4567-e89b-12d3-a456-426614174000", "name": "", "email": "ada@example.com"},
     {"id": "123e4567-e89b-12d3-a456-426614174000", "name": "Ada", "email": "ada@example.com", "age": -1},
     {"id": "123e4567-e89b-12d3-a456-426614174000", "name": "Ada", "email": "ada@example.com", "roles": ["root"]}])
LINE_ITEM = obj({"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}, "quantity": {"type": "integer", "minimum": 1}, "unit_price": {"type": "number", "minimum": 0}})
add("order", obj({"order_id": {"type": "integer", "minimum": 1}, "status": {"enum": ["pending", "paid", "shipped", "delivered", "cancelled"]},
                  "items": {"type": "array", "items": LINE_ITEM, "minItems": 1, "maxItems": 50},
                  "total": {"type": "number", "minimum": 0}, "currency": {"enum": ["USD", "EUR", "GBP", "JPY"]},
                  "created_at": {"type": "string", "format": "date-time"}}),
    [{"order_id": 1001, "status": "paid", "items": [{"sku": "ABC-1234", "quantity": 2, "unit_price": 9.99}], "total": 19.98, "currency": "USD", "created_at": "2024-03-01T12:00:00Z"}],
    [{"order_id": 1001, "status": "paid", "items": [], "total": 0, "currency": "USD", "created_at": "2024-03-01T12:00:00Z"},
     {"order_id": 1001, "status": "lost", "items": [{"sku": "ABC-1234", "quantity": 2, "unit_price": 1}], "total": 2, "currency": "USD", "created_at": "2024-03-01T12:00:00Z"},
     {"order_id": 1001, "status": "paid", "items": [{"sku": "abc-1234", "quantity": 2, "unit_price": 1}], "total": 2, "currency": "USD", "created_at": "2024-03-01T12:00:00Z"}])
add("product", obj({"id": INT, "title": STR, "price": {"type": "number", "exclusiveMinimum": 0}, "tags": {"type": "array", "items": STR},
                    "in_stock": BOOL, "dimensions": obj({"width": NUM, "height": NUM, "depth": NUM})}, ["id", "title", "price"]),
    [{"id": 1, "title": "Chair", "price": 49.5}, {"id": 2, "title": "Desk", "price": 0.01, "tags": ["office"], "in_stock": True, "dimensions": {"width": 1.2, "height": 0.75, "depth": 0.6}}],
    [{"id": 1, "title": "Chair", "price": 0}, {"id": 1.5, "title": "Chair", "price": 3}, {"id": 1, "title": "Chair", "price": 3, "dimensions": {"width": 1}}])
add("payment", obj({"amount": {"type": "integer", "minimum": 1, "maximum": 99999999}, "currency": {"type": "string", "pattern": "^[a-z]{3}$"},
                    "method": {"oneOf": [obj({"type": {"const": "card"}, "last4": {"type": "string", "pattern": "^[0-9]{4}$"}}),
                                         obj({"type": {"const": "bank"}, "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{4,30}$"}})]},
                    "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 100}}}, ["amount", "currency", "method"]),
    [{"amount": 500, "currency": "usd", "method": {"type": "card", "last4": "4242"}},
     {"amount": 1, "currency": "eur", "method": {"type": "bank", "iban": "DE89370400440532013000"}, "metadata": {"order": "A1", "note": ""}}],
    [{"amount": 0, "currency": "usd", "method": {"type": "card", "last4": "4242"}}, {"amount": 5, "currency": "usd", "method": {"type": "card", "iban": "DE89370400440532013000"}},
     {"amount": 5, "currency": "usd", "method": {"type": "card", "last4": "4242"}, "metadata": {"n": 3}}])
add("error_response", obj({"error": obj({"code": INT, "message": STR, "details": {"type": "array", "items": obj({"field": STR, "issue": STR})}}, ["code", "message"])}),
    [{"error": {"code": 404, "message": "Not found"}}, {"error": {"code": 422, "message": "Invalid", "details": [{"field": "email", "issue": "format"}]}}],
    [{"error": {"code": "404", "message": "x"}}, {"error": {"message": "x"}}, {"error": {"code": 1, "message": "x"}, "ok": False}])
add("paginated_list", obj({"data": {"type": "array", "items": obj({"id": {"type": "string"}, "score": NUM})}, "has_more": BOOL,
                           "next_cursor": {"type": ["string", "null"]}, "total": {"type": "integer", "minimum": 0}}),
    [{"data": [], "has_more": False, "next_cursor": None, "total": 0}, {"data": [{"id": "a", "score": 0.5}, {"id": "b", "score": -2}], "has_more": True, "next_cursor": "c2", "total": 10}],
    [{"data": [], "has_more": False, "next_cursor": 3, "total": 0}, {"data": [{"id": "a"}], "has_more": False, "next_cursor": None, "total": 1}])
add("login_request", obj({"username": {"type": "string", "pattern": "^[a-zA-Z0-9_]{3,20}$"}, "password": {"type": "string", "minLength": 8, "maxLength": 128}, "remember_me": BOOL}, ["username", "password"]),
    [{"username": "ada_l", "password": "correct horse"}, {"username": "bob", "password": "12345678", "remember_me": True}],
    [{"username": "ab", "password": "12345678"}, {"username": "bob", "password": "short"}, {"username": "bob!", "password": "12345678"}])
add("webhook_event", obj({"id": {"type": "string", "pattern": "^evt_[A-Za-z0-9]{8,24}$"}, "type": {"enum": ["invoice.paid", "invoice.failed", "customer.created"]},
                          "created": {"type": "integer", "minimum": 0}, "data": {"type": "object"}, "livemode": BOOL}),
    [{"id": "evt_1234abcd", "type": "invoice.paid", "created": 1700000000, "data": {"object": {"id": "in_1"}}, "livemode": False}],
    [{"id": "evt_12", "type": "invoice.paid", "created": 1, "data": {}, "livemode": False}, {"id": "evt_1234abcd", "type": "refund", "created": 1, "data": {}, "livemode": False},
     {"id": "evt_1234abcd", "type": "invoice.paid", "created": 1, "data": [], "livemode": False}])
add("chat_message", obj({"role": {"enum": ["system", "user", "assistant", "tool"]}, "content": {"anyOf": [STR, {"type": "array", "items": obj({"type": {"const": "text"}, "text": STR})}]},
                         "name": STR}, ["role", "content"]),
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "hello"}], "name": "bot"}],
    [{"role": "bot", "content": "hi"}, {"role": "user", "content": 5}, {"role": "user", "content": [{"type": "image", "text": "x"}]}])
add("geojson_point", obj({"type": {"const": "Point"}, "coordinates": {"type": "array", "prefixItems": [{"type": "number", "minimum": -180, "maximum": 180}, {"type": "number", "minimum": -90, "maximum": 90}], "minItems": 2, "items": False}}),
    [{"type": "Point", "coordinates": [2.35, 48.85]}, {"type": "Point", "coordinates": [-180, 90]}],
    [{"type": "Point", "coordinates": [2.35]}, {"type": "Point", "coordinates": [200, 0]}, {"type": "Point", "coordinates": [1, 2, 3]}, {"type": "Line", "coordinates": [1, 2]}])
add("invoice", obj({"number": {"type": "string", "pattern": "^INV-[0-9]{6}$"}, "issued": {"type": "string", "format": "date"}, "due": {"type": "string", "format": "date"},
                    "customer": obj({"name": STR, "email": {"type": "string", "format": "email"}}),
                    "lines": {"type": "array", "items": obj({"description": STR, "amount": {"type": "number", "minimum": 0}}), "minItems": 1},
                    "paid": BOOL}),
    [{"number": "INV-000123", "issued": "2024-01-15", "due": "2024-02-14", "customer": {"name": "Acme", "email": "billing@acme.com"}, "lines": [{"description": "Work", "amount": 1500}], "paid": False}],
    [{"number": "INV-123", "issued": "2024-01-15", "due": "2024-02-14", "customer": {"name": "Acme", "email": "billing@acme.com"}, "lines": [{"description": "Work", "amount": 1}], "paid": False},
     {"number": "INV-000123", "issued": "2024-01-15", "due": "2024-02-14", "customer": {"name": "Acme", "email": "billing"}, "lines": [{"description": "Work", "amount": 1}], "paid": False}])
add("oauth_token", obj({"access_token": STR, "token_type": {"const": "Bearer"}, "expires_in": {"type": "integer", "minimum": 1}, "refresh_token": STR, "scope": STR}, ["access_token", "token_type", "expires_in"]),
    [{"access_token": "abc", "token_type": "Bearer", "expires_in": 3600}, {"access_token": "x", "token_type": "Bearer", "expires_in": 1, "refresh_token": "r", "scope": "read write"}],
    [{"access_token": "abc", "token_type": "bearer", "expires_in": 3600}, {"access_token": "abc", "token_type": "Bearer", "expires_in": 0}])
add("health_check", obj({"status": {"enum": ["ok", "degraded", "down"]}, "uptime_s": {"type": "number", "minimum": 0}, "checks": {"type": "object", "additionalProperties": {"enum": ["pass", "fail"]}}}),
    [{"status": "ok", "uptime_s": 12.5, "checks": {"db": "pass", "cache": "fail"}}, {"status": "down", "uptime_s": 0, "checks": {}}],
    [{"status": "ok", "uptime_s": 1, "checks": {"db": "maybe"}}, {"status": "up", "uptime_s": 1, "checks": {}}])

# --- configs -------------------------------------------------------------------------------------
add("server_config", obj({"host": {"type": "string", "format": "hostname"}, "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                          "tls": obj({"enabled": BOOL, "cert_file": STR, "key_file": STR}, ["enabled"]),
                          "workers": {"type": "integer", "minimum": 1, "maximum": 256}, "log_level": {"enum": ["debug", "info", "warn", "error"]}}, ["host", "port"]),
    [{"host": "localhost", "port": 8080}, {"host": "api.example.com", "port": 443, "tls": {"enabled": True, "cert_file": "/etc/c.pem", "key_file": "/etc/k.pem"}, "workers": 8, "log_level": "info"}],
    [{"host": "localhost", "port": 70000}, {"host": "localhost", "port": 80, "log_level": "trace"}, {"host": "localhost", "port": 80, "tls": {}}])
add("database_config", obj({"driver": {"enum": ["postgres", "mysql", "sqlite"]}, "url": {"type": "string", "format": "uri"},
                            "pool": obj({"min": {"type": "integer", "minimum": 0, "maximum": 100}, "max": {"type": "integer", "minimum": 1, "maximum": 1000}}),
                            "ssl": BOOL}, ["driver", "url"]),
    [{"driver": "postgres", "url": "postgres://db.internal/app"}, {"driver": "sqlite", "url": "file://local/db", "pool": {"min": 0, "max": 1}, "ssl": False}],
    [{"driver": "oracle", "url": "x://y"}, {"driver": "mysql", "url": "postgres://db/app", "pool": {"min": 0, "max": 0}}])
add("logging_config", obj({"version": {"const": 1}, "handlers": {"type": "object", "additionalProperties": obj({"class": STR, "level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]}}, ["class"])},
                           "root": obj({"level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]}, "handlers": {"type": "array", "items": STR}})}),
    [{"version": 1, "handlers": {"console": {"class": "logging.StreamHandler", "level": "INFO"}}, "root": {"level": "INFO", "handlers": ["console"]}}],
    [{"version": 2, "handlers": {}, "root": {"level": "INFO", "handlers": []}}, {"version": 1, "handlers": {"c": {"level": "INFO"}}, "root": {"level": "INFO", "handlers": []}}])
add("feature_flags", {"type": "object", "additionalProperties": obj({"enabled": BOOL, "rollout": {"type": "integer", "minimum": 0, "maximum": 100}}, ["enabled"])},
    [{}, {"new_ui": {"enabled": True, "rollout": 50}, "beta": {"enabled": False}}],
    [{"new_ui": {"rollout": 50}}, {"new_ui": {"enabled": True, "rollout": 101}}, {"new_ui": True}])
add("container_spec", obj({"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}, "image": STR,
                           "ports": {"type": "array", "items": obj({"containerPort": {"type": "integer", "minimum": 1, "maximum": 65535}, "protocol": {"enum": ["TCP", "UDP"]}}, ["containerPort"])},
                           "env": {"type": "array", "items": obj({"name": STR, "value": STR})},
                           "resources": obj({"limits": obj({"cpu": STR, "memory": STR}, []), "requests": obj({"cpu": STR, "memory": STR}, [])}, [])}, ["name", "image"]),
    [{"name": "web", "image": "nginx:1.25"}, {"name": "api-server", "image": "app:v2", "ports": [{"containerPort": 80, "protocol": "TCP"}], "env": [{"name": "MODE", "value": "prod"}], "resources": {"limits": {"cpu": "500m"}}}],
    [{"name": "Web", "image": "nginx"}, {"name": "web", "image": "nginx", "ports": [{"containerPort": 0}]}, {"name": "web", "image": "nginx", "ports": [{"protocol": "TCP"}]}])
add("ci_job", obj({"runs_on": {"enum": ["ubuntu-latest", "macos-latest", "windows-latest"]}, "timeout_minutes": {"type": "integer", "minimum": 1, "maximum": 360},
                   "steps": {"type": "array", "minItems": 1, "items": {"anyOf": [obj({"uses": STR}), obj({"name": STR, "run": STR})]}}}, ["runs_on", "steps"]),
    [{"runs_on": "ubuntu-latest", "steps": [{"uses": "actions/checkout@v4"}, {"name": "test", "run": "make test"}]}],
    [{"runs_on": "ubuntu-latest", "steps": []}, {"runs_on": "solaris", "steps": [{"uses": "x"}]}, {"runs_on": "ubuntu-latest", "steps": [{"run": "x"}]}])
add("package_json", obj({"name": {"type": "string", "pattern": "^[a-z0-9-]+$"}, "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"}, "private": BOOL,
                         "dependencies": {"type": "object", "additionalProperties": STR}, "scripts": {"type": "object", "additionalProperties": STR}}, ["name", "version"]),
    [{"name": "my-app", "version": "1.0.0"}, {"name": "x", "version": "0.10.2", "private": True, "dependencies": {"react": "^18.2.0"}, "scripts": {"test": "jest"}}],
    [{"name": "My App", "version": "1.0.0"}, {"name": "x", "version": "1.0"}, {"name": "x", "version": "1.0.0", "dependencies": {"react": 18}}])
add("cron_job", obj({"schedule": {"type": "string", "pattern": "^(\\*|[0-9]{1,2}) (\\*|[0-9]{1,2}) (\\*|[0-9]{1,2}) (\\*|[0-9]{1,2}) (\\*|[0-6])$"}, "command": STR, "enabled": BOOL}),
    [{"schedule": "0 3 * * *", "command": "backup.sh", "enabled": True}, {"schedule": "* * * * 0", "command": "", "enabled": False}],
    [{"schedule": "0 3 * *", "command": "x", "enabled": True}, {"schedule": "0 3 * * 7", "command": "x", "enabled": True}])
add("retry_policy", obj({"max_attempts": {"type": "integer", "minimum": 1, "maximum": 10}, "backoff": {"enum": ["fixed", "linear", "exponential"]},
                         "initial_delay_ms": {"type": "integer", "minimum": 0, "maximum": 60000}, "jitter": {"type": "number", "minimum": 0, "maximum": 1}}),
    [{"max_attempts": 3, "backoff": "exponential", "initial_delay_ms": 100, "jitter": 0.2}, {"max_attempts": 10, "backoff": "fixed", "initial_delay_ms": 0, "jitter": 1}],
    [{"max_attempts": 0, "backoff": "fixed", "initial_delay_ms": 0, "jitter": 0}, {"max_attempts": 1, "backoff": "fixed", "initial_delay_ms": 0, "jitter": 1.5}])
add("model_config", obj({"model": {"enum": ["llama-3-8b", "qwen2.5-7b", "mistral-7b"]}, "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                         "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "max_tokens": {"type": "integer", "minimum": 1, "maximum": 131072},
                         "stop": {"type": "array", "items": STR, "maxItems": 4}}, ["model"]),
    [{"model": "llama-3-8b"}, {"model": "qwen2.5-7b", "temperature": 0.7, "top_p": 0.95, "max_tokens": 512, "stop": ["\n\n"]}],
    [{"model": "gpt-4"}, {"model": "mistral-7b", "top_p": 0}, {"model": "mistral-7b", "stop": ["a", "b", "c", "d", "e"]}])

# --- nested objects, arrays of objects -------------------------------------------------------------
EMPLOYEE = obj({"name": STR, "title": STR, "salary": {"type": "integer", "minimum": 0}, "manager": {"type": "boolean"}})
add("company", obj({"name": STR, "founded": {"type": "integer", "minimum": 1800, "maximum": 2100},
                    "departments": {"type": "array", "items": obj({"name": STR, "employees": {"type": "array", "items": EMPLOYEE}})}}),
    [{"name": "Acme", "founded": 1999, "departments": [{"name": "R&D", "employees": [{"name": "Ann", "title": "Eng", "salary": 100000, "manager": False}]}, {"name": "Ops", "employees": []}]}],
    [{"name": "Acme", "founded": 1700, "departments": []}, {"name": "Acme", "founded": 1999, "departments": [{"name": "R&D", "employees": [{"name": "Ann"}]}]}])
add("todo_list", {"type": "array", "items": obj({"id": {"type": "integer", "minimum": 1}, "task": {"type": "string", "minLength": 1}, "done": BOOL,
                                                 "due": {"type": ["string", "null"], "format": "date"}}, ["id", "task", "done"]), "maxItems": 100},
    [[], [{"id": 1, "task": "milk", "done": False}, {"id": 2, "task": "eggs", "done": True, "due": "2024-06-01"}, {"id": 3, "task": "x", "done": False, "due": None}]],
    [[{"id": 0, "task": "milk", "done": False}], [{"id": 1, "task": "", "done": False}], [{"id": 1, "task": "x"}], {"id": 1}])
add("search_results", obj({"query": STR, "results": {"type": "array", "items": obj({"title": STR, "url": {"type": "string", "format": "uri"}, "snippet": {"type": "string", "maxLength": 300}, "rank": {"type": "integer", "minimum": 1}}), "maxItems": 10}}),
    [{"query": "q", "results": [{"title": "T", "url": "https://example.com/a", "snippet": "s", "rank": 1}]}, {"query": "", "results": []}],
    [{"query": "q", "results": [{"title": "T", "url": "https://example.com", "snippet": "s", "rank": 0}]}, {"query": "q"}])
add("recipe", obj({"title": STR, "servings": {"type": "integer", "minimum": 1, "maximum": 24}, "ingredients": {"type": "array", "minItems": 1, "items": obj({"item": STR, "amount": {"type": "number", "exclusiveMinimum": 0}, "unit": {"enum": ["g", "kg", "ml", "l", "cup", "tbsp", "tsp", "piece"]}})},
                   "steps": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}, "vegetarian": BOOL}),
    [{"title": "Pancakes", "servings": 4, "ingredients": [{"item": "flour", "amount": 200, "unit": "g"}, {"item": "egg", "amount": 2, "unit": "piece"}], "steps": ["Mix", "Fry"], "vegetarian": True}],
    [{"title": "x", "servings": 0, "ingredients": [{"item": "a", "amount": 1, "unit": "g"}], "steps": ["s"], "vegetarian": True},
     {"title": "x", "servings": 2, "ingredients": [{"item": "a", "amount": 1, "unit": "pinch"}], "steps": ["s"], "vegetarian": True},
     {"title": "x", "servings": 2, "ingredients": [{"item": "a", "amount": 1, "unit": "g"}], "steps": [], "vegetarian": True}])
add("matrix", {"type": "array", "items": {"type": "array", "items": NUM, "minItems": 3, "maxItems": 3}, "minItems": 3, "maxItems": 3},
    [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1.5, -2, 3e2], [0, 0, 0], [1, 1, 1]]],
    [[[1, 0], [0, 1]], [[1, 0, 0], [0, 1, 0]], [[1, 0, 0], [0, 1, 0], [0, 0, "1"]]])
add("survey_response", obj({"respondent": {"type": "string", "format": "uuid"}, "answers": {"type": "array", "items": obj({"question_id": INT, "answer": {"type": ["string", "integer", "boolean", "null"]}})},
                            "submitted": {"type": "string", "format": "date-time"}}),
    [{"respondent": "123e4567-e89b-12d3-a456-426614174000", "answers": [{"question_id": 1, "answer": "yes"}, {"question_id": 2, "answer": 5}, {"question_id": 3, "answer": None}], "submitted": "2024-04-01T10:00:00Z"}],
    [{"respondent": "123e4567-e89b-12d3-a456-426614174000", "answers": [{"question_id": 1, "answer": 2.5}], "submitted": "2024-04-01T10:00:00Z"}])
add("timeline", obj({"events": {"type": "array", "items": obj({"at": {"type": "string", "format": "date-time"}, "kind": {"enum": ["created", "updated", "deleted"]}, "actor": obj({"id": INT, "name": STR})})}}),
    [{"events": [{"at": "2024-01-01T00:00:00Z", "kind": "created", "actor": {"id": 1, "name": "a"}}]}, {"events": []}],
    [{"events": [{"at": "yesterday", "kind": "created", "actor": {"id": 1, "name": "a"}}]}, {"events": [{"at": "2024-01-01T00:00:00Z", "kind": "moved", "actor": {"id": 1, "name": "a"}}]}])
add("inventory", obj({"warehouse": STR, "bins": {"type": "object", "additionalProperties": {"type": "array", "items": obj({"sku": STR, "qty": {"type": "integer", "minimum": 0}})}}}),
    [{"warehouse": "W1", "bins": {"A1": [{"sku": "x", "qty": 3}], "B2": []}}, {"warehouse": "W2", "bins": {}}],
    [{"warehouse": "W1", "bins": {"A1": [{"sku": "x", "qty": -3}]}}, {"warehouse": "W1", "bins": {"A1": {"sku": "x", "qty": 3}}}])
add("sensor_readings", obj({"device": {"type": "string", "pattern": "^dev-[0-9a-f]{6}$"}, "readings": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer", "minimum": 0}, {"type": "number"}], "items": False, "minItems": 2}, "maxItems": 100}}),
    [{"device": "dev-00ff1a", "readings": [[1700000000, 21.5], [1700000060, 21.7]]}, {"device": "dev-abcdef", "readings": []}],
    [{"device": "dev-XYZ", "readings": []}, {"device": "dev-00ff1a", "readings": [[1700000000]]}, {"device": "dev-00ff1a", "readings": [[1, 2, 3]]}])
add("kv_store_batch", {"type": "array", "items": {"oneOf": [obj({"op": {"const": "put"}, "key": STR, "value": STR}), obj({"op": {"const": "delete"}, "key": STR})]}, "minItems": 1, "maxItems": 20},
    [[{"op": "put", "key": "a", "value": "1"}, {"op": "delete", "key": "b"}]],
    [[], [{"op": "put", "key": "a"}], [{"op": "get", "key": "a"}]])
add("shipping_label", obj({"from": ADDRESS, "to": ADDRESS, "weight_kg": {"type": "number", "exclusiveMinimum": 0, "maximum": 70}, "service": {"enum": ["ground", "express", "overnight"]}}),
    [{"from": {"street": "a", "city": "b", "country": "US"}, "to": {"street": "c", "city": "d", "postal_code": "90210", "country": "US"}, "weight_kg": 2.5, "service": "ground"}],
    [{"from": {"street": "a", "city": "b", "country": "US"}, "to": {"street": "c", "city": "d", "country": "US"}, "weight_kg": 71, "service": "ground"}])

# --- recursive structures ------------------------------------------------------------------------
add("file_tree", {"$ref": "#/$defs/node", "$defs": {"node": obj({"name": STR, "type": {"enum": ["file", "dir"]}, "size": {"type": "integer", "minimum": 0},
                                                                  "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, ["name", "type"])}},
    [{"name": "/", "type": "dir", "children": [{"name": "a.txt", "type": "file", "size": 10}, {"name": "src", "type": "dir", "children": []}]}],
    [{"name": "/", "type": "dir", "children": [{"name": "a.txt", "type": "link"}]}, {"name": "/", "children": []}])
add("comment_thread", {"$defs": {"comment": obj({"author": STR, "text": STR, "replies": {"type": "array", "items": {"$ref": "#/$defs/comment"}, "maxItems": 5}}, ["author", "text"])},
                       "type": "object", "properties": {"post_id": INT, "comments": {"type": "array", "items": {"$ref": "#/$defs/comment"}}}, "required": ["post_id", "comments"], "additionalProperties": False},
    [{"post_id": 1, "comments": [{"author": "a", "text": "hi", "replies": [{"author": "b", "text": "hey", "replies": []}]}]}, {"post_id": 2, "comments": []}],
    [{"post_id": 1, "comments": [{"author": "a", "replies": []}]}, {"post_id": 1, "comments": [{"author": "a", "text": "x", "replies": [{"text": "y"}]}]}])
add("category_tree", {"definitions": {"cat": {"type": "object", "properties": {"id": INT, "label": STR, "sub": {"type": "array", "items": {"$ref": "#/definitions/cat"}}}, "required": ["id", "label"], "additionalProperties": False}},
                      "$ref": "#/definitions/cat"},
    [{"id": 1, "label": "root", "sub": [{"id": 2, "label": "a"}, {"id": 3, "label": "b", "sub": [{"id": 4, "label": "c"}]}]}],
    [{"id": 1, "label": "root", "sub": [{"id": "2", "label": "a"}]}, {"id": 1}])
add("linked_list", {"$defs": {"node": {"type": "object", "properties": {"value": INT, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}, "required": ["value", "next"], "additionalProperties": False}}, "$ref": "#/$defs/node"},
    [{"value": 1, "next": {"value": 2, "next": None}}, {"value": 0, "next": None}],
    [{"value": 1}, {"value": 1, "next": {"value": "2", "next": None}}])
add("expression_ast", {"$defs": {"expr": {"oneOf": [obj({"num": NUM}), obj({"var": {"type": "string", "pattern": "^[a-z]$"}}),
                                                    obj({"op": {"enum": ["+", "-", "*", "/"]}, "args": {"type": "array", "items": {"$ref": "#/$defs/expr"}, "minItems": 2, "maxItems": 2}})]}},
                       "$ref": "#/$defs/expr"},
    [{"num": 3}, {"op": "+", "args": [{"num": 1}, {"op": "*", "args": [{"var": "x"}, {"num": 2.5}]}]}],
    [{"op": "%", "args": [{"num": 1}, {"num": 2}]}, {"op": "+", "args": [{"num": 1}]}, {"var": "xy"}])
add("org_chart", {"$defs": {"person": obj({"name": STR, "role": STR, "reports": {"type": "array", "items": {"$ref": "#/$defs/person"}}}, ["name", "role"])}, "$ref": "#/$defs/person"},
    [{"name": "CEO", "role": "chief", "reports": [{"name": "CTO", "role": "tech", "reports": [{"name": "Eng", "role": "ic"}]}]}],
    [{"name": "CEO", "reports": []}, {"name": "CEO", "role": "chief", "reports": [{"name": "x"}]}])
add("json_value_tree", {"$defs": {"v": {"anyOf": [{"type": "null"}, BOOL, NUM, STR, {"type": "array", "items": {"$ref": "#/$defs/v"}}, {"type": "object", "additionalProperties": {"$ref": "#/$defs/v"}}]}}, "$ref": "#/$defs/v"},
    [None, 1, "s", [1, [2, {"a": None}]], {"x": {"y": [True, False]}}],
    [])
add("menu", {"$defs": {"item": {"type": "object", "properties": {"label": STR, "action": STR, "submenu": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1}},
                                "required": ["label"], "additionalProperties": False}},
             "type": "array", "items": {"$ref": "#/$defs/item"}},
    [[{"label": "File", "submenu": [{"label": "Open", "action": "open"}, {"label": "Recent", "submenu": [{"label": "a.txt"}]}]}, {"label": "Quit", "action": "quit"}]],
    [[{"label": "File", "submenu": []}], [{"action": "x"}]])
add("root_recursion", {"type": "object", "properties": {"name": STR, "children": {"type": "array", "items": {"$ref": "#"}, "maxItems": 3}}, "required": ["name"], "additionalProperties": False},
    [{"name": "a"}, {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}],
    [{"name": "a", "children": [{}]}, {"children": []}])
add("boolean_formula", {"$defs": {"f": {"anyOf": [BOOL, obj({"not": {"$ref": "#/$defs/f"}}), obj({"and": {"type": "array", "items": {"$ref": "#/$defs/f"}, "minItems": 2}}), obj({"or": {"type": "array", "items": {"$ref": "#/$defs/f"}, "minItems": 2}})]}}, "$ref": "#/$defs/f"},
    [True, {"not": False}, {"and": [True, {"or": [False, {"not": True}]}]}],
    [{"and": [True]}, {"xor": [True, False]}, "true"])

# --- enums, consts, combinators ------------------------------------------------------------------
add("status_enum", {"type": "string", "enum": ["active", "inactive", "suspended"]}, ["active", "suspended"], ["Active", "", "deleted", 1])
add("mixed_enum", {"enum": ["a", 1, 2.5, True, None, {"k": "v"}, [1, 2]]}, ["a", 1, 2.5, True, None, {"k": "v"}, [1, 2]], ["b", 3, False, {"k": "w"}, [2, 1]])
add("http_method", {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]}, ["GET", "OPTIONS"], ["get", "CONNECT"])
add("country_code", {"type": "string", "enum": ["US", "GB", "FR", "DE", "JP", "CN", "IN", "BR", "CA", "AU"]}, ["US", "AU"], ["XX", "us"])
add("const_version", obj({"schema_version": {"const": "2.0"}, "data": STR}), [{"schema_version": "2.0", "data": "x"}], [{"schema_version": "1.0", "data": "x"}, {"schema_version": 2, "data": "x"}])
add("shape_oneof", {"oneOf": [obj({"kind": {"const": "circle"}, "radius": {"type": "number", "exclusiveMinimum": 0}}),
                              obj({"kind": {"const": "rect"}, "w": {"type": "number", "minimum": 0}, "h": {"type": "number", "minimum": 0}}),
                              obj({"kind": {"const": "triangle"}, "points": {"type": "array", "items": {"type": "array", "items": NUM, "minItems": 2, "maxItems": 2}, "minItems": 3, "maxItems": 3}})]},
    [{"kind": "circle", "radius": 2}, {"kind": "rect", "w": 1, "h": 0}, {"kind": "triangle", "points": [[0, 0], [1, 0], [0, 1]]}],
    [{"kind": "circle", "radius": 0}, {"kind": "square", "w": 1}, {"kind": "triangle", "points": [[0, 0], [1, 0]]}])
add("anyof_primitive", {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"type": "string", "pattern": "^[a-z]+$"}, {"type": "null"}]}, [0, 9, "abc", None], [10, -1, "ABC", "", True])
add("allof_inheritance", {"$defs": {"base": obj({"id": {"type": "string", "format": "uuid"}, "created": {"type": "string", "format": "date-time"}}, extra=None)},
                          "allOf": [{"$ref": "#/$defs/base"}, obj({"id": {"type": "string"}, "created": {"type": "string"}, "title": STR}, ["title"], extra=None)]},
    [{"id": "123e4567-e89b-12d3-a456-426614174000", "created": "2024-01-01T00:00:00Z", "title": "t"}],
    [{"id": "123e4567-e89b-12d3-a456-426614174000", "created": "2024-01-01T00:00:00Z"}, {"id": "x", "created": "2024-01-01T00:00:00Z", "title": "t"}])
add("allof_bounds", {"allOf": [{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": 100}, {"minimum": 10}]}, [10, 55, 100], [9, 101, -5, 50.5])
add("allof_objects", {"allOf": [obj({"a": INT}, extra=None), obj({"b": STR}, extra=None), {"required": ["a", "b"], "additionalProperties": False, "properties": {"a": {}, "b": {}}}]},
    [{"a": 1, "b": "x"}], [{"a": 1}, {"b": "x"}, {"a": "1", "b": "x"}, {"a": 1, "b": "x", "c": 3}])
add("type_array", {"type": ["integer", "string", "null"], "minimum": 0, "maxLength": 3}, [0, 12, "abc", "", None], [-1, "abcd", True, 1.5])
add("nullable_openapi", obj({"nickname": {"type": "string", "nullable": True, "maxLength": 10}, "score": {"type": "integer", "nullable": True}}),
    [{"nickname": None, "score": None}, {"nickname": "bo", "score": 3}], [{"nickname": 3, "score": None}, {"nickname": "x" * 11, "score": 1}])
add("discriminated_union", {"$defs": {"cat": obj({"pet_type": {"const": "cat"}, "indoor": BOOL}), "dog": obj({"pet_type": {"const": "dog"}, "breed": STR})},
                            "type": "object", "properties": {"pet": {"oneOf": [{"$ref": "#/$defs/cat"}, {"$ref": "#/$defs/dog"}]}}, "required": ["pet"], "additionalProperties": False},
    [{"pet": {"pet_type": "cat", "indoor": True}}, {"pet": {"pet_type": "dog", "breed": "lab"}}],
    [{"pet": {"pet_type": "cat", "breed": "lab"}}, {"pet": {"pet_type": "fish"}}])
add("enum_in_array", {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 1, "maxItems": 3},
    [["red"], ["red", "red", "blue"]], [[], ["red", "green", "blue", "red"], ["yellow"]])
add("ref_with_siblings", {"$defs": {"name": {"type": "string", "minLength": 1}}, "type": "object",
                          "properties": {"first": {"$ref": "#/$defs/name", "maxLength": 5}, "last": {"$ref": "#/$defs/name"}}, "required": ["first", "last"], "additionalProperties": False},
    [{"first": "Ada", "last": "Lovelace"}], [{"first": "", "last": "L"}, {"first": "Adaaaa", "last": "L"}])

# --- strings, patterns, formats ------------------------------------------------------------------
add("string_lengths", obj({"code": {"type": "string", "minLength": 3, "maxLength": 3}, "note": {"type": "string", "maxLength": 20}, "long": {"type": "string", "minLength": 30}}),
    [{"code": "abc", "note": "", "long": "x" * 30}, {"code": "日本語", "note": "héllo wörld", "long": "y" * 64}],
    [{"code": "ab", "note": "", "long": "x" * 30}, {"code": "abc", "note": "x" * 21, "long": "x" * 30}, {"code": "abc", "note": "", "long": "short"}])
add("unicode_strings", obj({"text": STR, "emoji": {"type": "string", "maxLength": 4}}), [{"text": "日本語 テキスト", "emoji": "😀🎉"}, {"text": "tab\there \"q\" \\ /", "emoji": ""}], [{"text": "x", "emoji": "😀😀😀😀😀"}])
add("phone_number", obj({"phone": {"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"}}), [{"phone": "+14155552671"}], [{"phone": "4155552671"}, {"phone": "+0123456789"}, {"phone": "+1"}])
add("hex_color", {"type": "string", "pattern": "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"}, ["#fff", "#00FF7a"], ["fff", "#ffff", "#ggg"])
add("semver", {"type": "string", "pattern": "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$"}, ["1.2.3", "0.0.1-alpha.1"], ["1.2", "01.2.3", "1.2.3-"])
add("slug", {"type": "string", "pattern": "^[a-z0-9]+(?:-[a-z0-9]+)*$", "maxLength": 100}, ["hello-world", "a1"], ["Hello", "a--b", "-a"])
add("unanchored_pattern", {"type": "string", "pattern": "\\d"}, ["1", "xx9yy"], ["", "foo"])
add("unanchored_words", {"type": "string", "pattern": "foo\\d", "maxLength": 12}, ["foo1", "xxfoo9yy"], ["foo", "fo1", "foo1" + "x" * 9])
add("pattern_escapes", {"type": "string", "pattern": "^\"[^\"]*\"$"}, ["\"quoted\"", "\"\""], ["quoted", "\"a"])
add("zip_or_postcode", {"anyOf": [{"type": "string", "pattern": "^\\d{5}$"}, {"type": "string", "pattern": "^[A-Z]{1,2}\\d[A-Z\\d]? \\d[A-Z]{2}$"}]}, ["90210", "SW1A 1AA"], ["9021", "sw1a 1aa"])
add("date_formats", obj({"d": {"type": "string", "format": "date"}, "t": {"type": "string", "format": "time"}, "dt": {"type": "string", "format": "date-time"}}),
    [{"d": "2024-02-28", "t": "23:59:59Z", "dt": "1999-12-31T23:59:59.999999999-08:00"}, {"d": "2000-01-01", "t": "00:00:00.5+05:30", "dt": "2024-06-30T12:00:00Z"}],
    [{"d": "2024-02-30", "t": "23:59:59Z", "dt": "2024-06-30T12:00:00Z"}, {"d": "2024-01-01", "t": "24:00:00Z", "dt": "2024-06-30T12:00:00Z"}, {"d": "2024-01-01", "t": "12:00:00Z", "dt": "2024-06-30 12:00:00"}])
add("uuid_list", {"type": "array", "items": {"type": "string", "format": "uuid"}, "maxItems": 5}, [[], ["123e4567-e89b-12d3-a456-426614174000", "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"]], [["123e4567e89b12d3a456426614174000"], ["x"]])
add("network", obj({"ip": {"type": "string", "format": "ipv4"}, "host": {"type": "string", "format": "hostname"}, "url": {"type": "string", "format": "uri"}}),
    [{"ip": "192.168.0.1", "host": "example.com", "url": "https://example.com/path/to"}, {"ip": "255.255.255.255", "host": "a", "url": "ftp://files.host.org"}],
    [{"ip": "256.1.1.1", "host": "example.com", "url": "https://e.com"}, {"ip": "1.2.3", "host": "example.com", "url": "https://e.com"}])
add("email_only", {"type": "string", "format": "email"}, ["a@b.co", "first.last+tag@sub.example.org"], ["plain", "no-at-sign.com", 5])
add("unknown_format", {"type": "string", "format": "color-name"}, ["red", ""], [3])

# --- numbers -------------------------------------------------------------------------------------
add("integer_range", {"type": "integer", "minimum": -50, "maximum": 1234}, [-50, -1, 0, 7, 99, 1000, 1234], [-51, 1235, 1.5, "3"])
add("integer_exclusive", {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10}, [1, 9], [0, 10])
add("integer_min_only", {"type": "integer", "minimum": 100}, [100, 101, 99999999], [99, 0, -100])
add("integer_max_only", {"type": "integer", "maximum": -3}, [-3, -100, -999999], [-2, 0, 5])
add("negative_range", {"type": "integer", "minimum": -300, "maximum": -120}, [-300, -250, -199, -120], [-301, -119, 0])
add("number_unit_interval", {"type": "number", "minimum": 0, "maximum": 1}, [0, 0.5, 1, 1.0, 0.999], [1.01, -0.1, 2])
add("number_exclusive", {"type": "number", "exclusiveMinimum": -1, "exclusiveMaximum": 1}, [0, -0.5, 0.99], [-1, 1, 1.5])
add("number_fractional_bounds", {"type": "number", "minimum": 0.5, "maximum": 99.9}, [1, 50.25, 99], [0.4, 100, -1])
add("number_unbounded", NUM, [0, -1, 3.14, 1e10, -2.5e-3, 12345678901234], ["1", None])
add("draft4_exclusive", {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 10, "exclusiveMaximum": True}, [0.1, 5, 9.99], [0, 10])
add("percentages", {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 100}, "minItems": 2, "maxItems": 4}, [[0, 100], [12.5, 50, 37.5]], [[101, 0], [5], [1, 2, 3, 4, 5]])
add("coordinates", obj({"lat": {"type": "number", "minimum": -90, "maximum": 90}, "lon": {"type": "number", "minimum": -180, "maximum": 180}}),
    [{"lat": 48.8566, "lon": 2.3522}, {"lat": -90, "lon": 180}], [{"lat": 91, "lon": 0}, {"lat": 0, "lon": -180.5}])
add("port_list", {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}}, [[80, 443, 65535], []], [[0], [70000], [80.5]])

# --- arrays --------------------------------------------------------------------------------------
add("tuple_prefix_items", {"type": "array", "prefixItems": [STR, INT, BOOL]}, [["a", 1, True], ["a", 1], []], [[1, "a", True], ["a", "1"]])
add("tuple_with_rest", {"type": "array", "prefixItems": [{"const": "header"}], "items": INT, "minItems": 2, "maxItems": 4}, [["header", 1], ["header", 1, 2, 3]], [["header"], ["header", "x"], ["x", 1], ["header", 1, 2, 3, 4]])
add("draft7_tuple", {"type": "array", "items": [STR, NUM], "additionalItems": False}, [["a", 1.5], ["a"]], [["a", 1, 2], [1, "a"]])
add("fixed_length", {"type": "array", "items": STR, "minItems": 2, "maxItems": 2}, [["a", "b"]], [["a"], ["a", "b", "c"]])
add("large_max_items", {"type": "array", "items": INT, "maxItems": 1000}, [[], [1, 2, 3]], [["a"]])
add("min_items_only", {"type": "array", "items": BOOL, "minItems": 3}, [[True, False, True], [True] * 10], [[True, False]])
add("array_of_arrays", {"type": "array", "items": {"type": "array", "items": STR, "maxItems": 2}, "maxItems": 3}, [[["a", "b"], [], ["c"]]], [[["a", "b", "c"]], [[], [], [], []]])
add("unique_single", {"type": "array", "items": STR, "maxItems": 1, "uniqueItems": True}, [[], ["a"]], [["a", "b"]])
add("any_array", {"type": "array"}, [[], [1, "a", None, {"k": [True]}]], [{}, "[]"])

# --- objects -------------------------------------------------------------------------------------
add("all_optional", obj({"a": INT, "b": STR, "c": BOOL}, []), [{}, {"a": 1}, {"b": "x"}, {"a": 1, "c": True}, {"a": 1, "b": "x", "c": False}], [{"d": 1}, {"a": "1"}])
add("middle_required", obj({"a": INT, "b": STR, "c": BOOL, "d": NUM}, ["c"]), [{"c": True}, {"a": 1, "c": False, "d": 2}, {"b": "x", "c": True}], [{}, {"a": 1, "b": "x"}, {"a": 1, "d": 2}])
add("map_of_numbers", {"type": "object", "additionalProperties": NUM}, [{}, {"a": 1, "b": -2.5}], [{"a": "1"}, []])
add("map_with_known_keys", {"type": "object", "properties": {"total": INT}, "required": ["total"], "additionalProperties": STR},
    [{"total": 3}, {"total": 3, "x": "a", "y": "b"}], [{"x": "a"}, {"total": 3, "x": 1}])
add("empty_object", {"type": "object", "properties": {}, "additionalProperties": False}, [{}], [{"a": 1}, []])
add("any_object", {"type": "object"}, [{}, {"a": [1, {"b": None}]}], [[], "x", 1])
add("any_value", {}, [None, True, 0, "s", [1], {"a": {}}], [])
add("true_schema", True, [None, 1, {"a": "b"}], [])
add("additional_true", obj({"id": INT}, ["id"], extra=True), [{"id": 1}, {"id": 1, "extra": [1, 2]}], [{"extra": 1}, {"id": "1"}])
add("required_not_listed", {"type": "object", "properties": {"a": INT}, "required": ["a", "b"], "additionalProperties": STR}, [{"a": 1, "b": "x"}], [{"a": 1}, {"a": 1, "b": 2}])
add("property_names_with_escapes", obj({"quote\"d": INT, "back\\slash": STR, "ünïcode": BOOL, "with space": NUM}), [{"quote\"d": 1, "back\\slash": "x", "ünïcode": True, "with space": 1.5}], [{"quote\"d": 1}])
add("deep_nesting", obj({"l1": obj({"l2": obj({"l3": obj({"l4": obj({"l5": obj({"value": INT})})})})})}),
    [{"l1": {"l2": {"l3": {"l4": {"l5": {"value": 42}}}}}}], [{"l1": {"l2": {"l3": {"l4": {"l5": {}}}}}}, {"l1": {"l2": {"l3": {"l4": {"l5": {"value": "x"}}}}}}])
add("many_properties", obj({f"field_{i}": (INT if i % 3 == 0 else STR if i % 3 == 1 else BOOL) for i in range(30)}, [f"field_{i}" for i in range(0, 30, 2)]),
    [{f"field_{i}": (i if i % 3 == 0 else str(i) if i % 3 == 1 else True) for i in range(30)},
     {f"field_{i}": (i if i % 3 == 0 else str(i) if i % 3 == 1 else False) for i in range(0, 30, 2)}],
    [{f"field_{i}": (i if i % 3 == 0 else str(i) if i % 3 == 1 else True) for i in range(1, 30, 2)}])
add("non_strict_default", {"type": "object", "properties": {"a": INT}}, [{}, {"a": 1}], [{"a": "x"}])

# --- LLM extraction / structured-output shapes ----------------------------------------------------
add("sentiment", obj({"sentiment": {"enum": ["positive", "negative", "neutral"]}, "confidence": {"type": "number", "minimum": 0, "maximum": 1}, "reasons": {"type": "array", "items": STR, "maxItems": 3}}),
    [{"sentiment": "positive", "confidence": 0.93, "reasons": ["great food"]}], [{"sentiment": "mixed", "confidence": 0.5, "reasons": []}, {"sentiment": "positive", "confidence": 1.2, "reasons": []}])
add("named_entities", obj({"entities": {"type": "array", "items": obj({"text": STR, "label": {"enum": ["PERSON", "ORG", "LOC", "DATE", "MISC"]}, "start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0}})}}),
    [{"entities": [{"text": "Ada", "label": "PERSON", "start": 0, "end": 3}]}, {"entities": []}], [{"entities": [{"text": "Ada", "label": "PER", "start": 0, "end": 3}]}])
add("classification", obj({"label": {"enum": ["spam", "ham"]}, "score": {"type": "number", "minimum": 0, "maximum": 1}}), [{"label": "spam", "score": 0.99}], [{"label": "eggs", "score": 0.5}])
add("resume", obj({"name": STR, "email": {"type": "string", "format": "email"}, "skills": {"type": "array", "items": STR, "maxItems": 20},
                   "experience": {"type": "array", "items": obj({"company": STR, "role": STR, "start": {"type": "string", "format": "date"}, "end": {"type": ["string", "null"], "format": "date"}})},
                   "education": {"type": "array", "items": obj({"school": STR, "degree": {"enum": ["BSc", "MSc", "PhD", "Other"]}, "year": {"type": "integer", "minimum": 1950, "maximum": 2030}})}}),
    [{"name": "Ada", "email": "ada@x.org", "skills": ["math"], "experience": [{"company": "A", "role": "Eng", "start": "2020-01-01", "end": None}], "education": [{"school": "U", "degree": "PhD", "year": 2019}]}],
    [{"name": "Ada", "email": "ada@x.org", "skills": [], "experience": [], "education": [{"school": "U", "degree": "MBA", "year": 2019}]}])
add("meeting_notes", obj({"date": {"type": "string", "format": "date"}, "attendees": {"type": "array", "items": STR, "minItems": 1}, "decisions": {"type": "array", "items": STR},
                          "action_items": {"type": "array", "items": obj({"owner": STR, "task": STR, "due": {"type": "string", "format": "date"}}, ["owner", "task"])}}),
    [{"date": "2024-03-05", "attendees": ["A", "B"], "decisions": [], "action_items": [{"owner": "A", "task": "ship"}]}], [{"date": "2024-03-05", "attendees": [], "decisions": [], "action_items": []}])
add("qa_pair", obj({"question": STR, "answer": STR, "citations": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 5}}), [{"question": "q", "answer": "a", "citations": [1, 2]}], [{"question": "q", "answer": "a", "citations": [0]}])
add("product_review", obj({"rating": {"type": "integer", "minimum": 1, "maximum": 5}, "title": {"type": "string", "maxLength": 60}, "pros": {"type": "array", "items": STR}, "cons": {"type": "array", "items": STR}, "recommend": BOOL}),
    [{"rating": 4, "title": "Good", "pros": ["fast"], "cons": [], "recommend": True}], [{"rating": 6, "title": "x", "pros": [], "cons": [], "recommend": True}, {"rating": 3, "title": "x", "pros": [], "cons": []}])
add("plan_steps", obj({"goal": STR, "steps": {"type": "array", "items": obj({"n": {"type": "integer", "minimum": 1}, "action": STR, "tool": {"enum": ["search", "calculator", "code", "none"]}}), "minItems": 1, "maxItems": 10}}),
    [{"goal": "g", "steps": [{"n": 1, "action": "look up", "tool": "search"}]}], [{"goal": "g", "steps": []}, {"goal": "g", "steps": [{"n": 1, "action": "x", "tool": "browser"}]}])
add("multiple_choice", obj({"answer": {"enum": ["A", "B", "C", "D"]}, "explanation": {"type": "string", "maxLength": 500}}), [{"answer": "C", "explanation": "because"}], [{"answer": "E", "explanation": ""}])
add("tool_call_envelope", obj({"name": {"enum": ["get_weather", "search"]}, "arguments": {"type": "object"}}), [{"name": "search", "arguments": {"q": "x"}}], [{"name": "delete", "arguments": {}}, {"name": "search", "arguments": "x"}])
add("keywords", obj({"keywords": {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 30, "pattern": "^[a-z ]+$"}, "minItems": 3, "maxItems": 8}}),
    [{"keywords": ["alpha", "beta", "gamma ray"]}], [{"keywords": ["a", "bb", "cc"]}, {"keywords": ["aa", "bb"]}, {"keywords": ["AA", "bb", "cc"]}])
add("date_range", obj({"from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}, "granularity": {"enum": ["day", "week", "month"]}}),
    [{"from": "2024-01-01", "to": "2024-12-31", "granularity": "month"}], [{"from": "2024-1-1", "to": "2024-12-31", "granularity": "month"}])
add("bank_transaction", obj({"id": {"type": "string", "format": "uuid"}, "amount": {"type": "number"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}, "booked": {"type": "string", "format": "date-time"},
                             "counterparty": obj({"name": STR, "iban": {"type": "string", "pattern": "^[A-Z]{2}\\d{2}[A-Z0-9]{10,30}$"}}, ["name"]), "category": {"type": ["string", "null"]}}),
    [{"id": "123e4567-e89b-12d3-a456-426614174000", "amount": -12.5, "currency": "EUR", "booked": "2024-02-01T08:30:00Z", "counterparty": {"name": "Shop"}, "category": None}],
    [{"id": "123e4567-e89b-12d3-a456-426614174000", "amount": "12", "currency": "EUR", "booked": "2024-02-01T08:30:00Z", "counterparty": {"name": "Shop"}, "category": None}])


def openapi_nullable(s):
    """jsonschema does not know OpenAPI's `nullable`: spell it as a type for the check."""
    if isinstance(s, dict):
        s = {k: openapi_nullable(v) for k, v in s.items()}
        if s.pop("nullable", False) and "type" in s:
            t = s["type"] if isinstance(s["type"], list) else [s["type"]]
            s["type"] = t + ["null"]
    elif isinstance(s, list):
        s = [openapi_nullable(v) for v in s]
    return s


def main(out_path):
    fmt = jsonschema.FormatChecker()
    names = set()
    bad = []
    with open(out_path, "w", encoding="utf-8") as f:
        for e in S:
            assert e["name"] not in names, e["name"]
            names.add(e["name"])
            cls = jsonschema.validators.validator_for(e["schema"], default=jsonschema.Draft202012Validator)
            if "items" in json.dumps(e["schema"]) and e["name"] == "draft7_tuple":
                cls = jsonschema.Draft7Validator
            if e["name"] == "draft4_exclusive":
                cls = jsonschema.Draft4Validator
            v = cls(openapi_nullable(e["schema"]), format_checker=cls.FORMAT_CHECKER)
            for x in e["valid"]:
                errs = list(v.iter_errors(x))
                if errs:
                    bad.append((e["name"], "valid", x, errs[0].message))
            for x in e["invalid"]:
                if not list(v.iter_errors(x)):
                    bad.append((e["name"], "invalid", x))
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    for b in bad:
        print("WRONG:", *b)
    if bad:
        sys.exit(1)
    print(f"{len(S)} schemas, {sum(len(e['valid']) for e in S)} valid and {sum(len(e['invalid']) for e in S)} invalid instances -> {out_path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "schemas.jsonl")
