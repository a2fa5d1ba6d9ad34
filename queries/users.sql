-- name: CreateUser :one
INSERT INTO users (email, name)
VALUES (@email, @name)
RETURNING id, email, name, is_active, created_at, updated_at;

-- name: GetUser :one
-- cache: ttl=5m
SELECT id, email, name, is_active, created_at, updated_at
FROM users
WHERE id = @id;

-- name: GetUserByEmail :one
SELECT id, email, name, is_active, created_at, updated_at
FROM users
WHERE lower(email) = lower(@email);

-- name: CountUsers :one
SELECT count(*) FROM users;
