-- Filter database of CPR Abonnement (sqlite). GENERATED from the SQLAlchemy models
-- (include/cpr_abonnement/store/models.py) by `cprsub db schema --dialect sqlite`,
-- and a test keeps it current. Deploy with `cprsub db upgrade` (Alembic), which creates the
-- same schema and upgrades existing databases in place.
--
-- subscriber            product.md §1-2: one row per IT system (UserSystemUUID)
-- filter_*              product.md §2-3: one table per filter type, [added_at, removed_at)
--                       is the validity period, so "filters in force at T" is one query
-- credential            API tokens (salted SHA-256 of a 256-bit secret, never the token)
-- audit                 every operation: caller, time, subscriber, arguments (PNRs masked)

CREATE TABLE audit (
	id INTEGER NOT NULL,
	at DATETIME NOT NULL,
	caller VARCHAR(200) NOT NULL,
	subscriber_uuid VARCHAR(36),
	operation VARCHAR(64) NOT NULL,
	arguments TEXT NOT NULL,
	result VARCHAR(200) NOT NULL,
	transport VARCHAR(16),
	certificate_sha256 VARCHAR(64),
	call_id VARCHAR(255),
	CONSTRAINT pk_audit PRIMARY KEY (id)
);

CREATE INDEX ix_audit_at ON audit (at);

CREATE INDEX ix_audit_subscriber_uuid ON audit (subscriber_uuid);

CREATE TABLE extract_check (
	id INTEGER NOT NULL,
	checked_at DATETIME NOT NULL,
	file_name VARCHAR(100) NOT NULL,
	verdict VARCHAR(16) NOT NULL,
	task_number VARCHAR(6),
	production_date DATE,
	previous_date DATE,
	size_bytes BIGINT NOT NULL,
	persons INTEGER,
	records INTEGER,
	problems TEXT NOT NULL,
	expectations TEXT NOT NULL,
	quarantined_to VARCHAR(500),
	CONSTRAINT pk_extract_check PRIMARY KEY (id)
);

CREATE INDEX ix_extract_check_checked_at ON extract_check (checked_at);

CREATE TABLE extract_run (
	id INTEGER NOT NULL,
	task_number VARCHAR(6) NOT NULL,
	production_date DATE NOT NULL,
	previous_date DATE NOT NULL,
	file_name VARCHAR(100) NOT NULL,
	extract_sha256 VARCHAR(64) NOT NULL,
	persons INTEGER NOT NULL,
	records INTEGER NOT NULL,
	first_processed_at DATETIME NOT NULL,
	filters_as_of DATETIME NOT NULL,
	delivered_at DATETIME,
	CONSTRAINT pk_extract_run PRIMARY KEY (id),
	CONSTRAINT uq_extract_run_task_number_production_date UNIQUE (task_number, production_date)
);

CREATE TABLE filter_lock (
	id INTEGER NOT NULL,
	changed_at DATETIME,
	CONSTRAINT pk_filter_lock PRIMARY KEY (id)
);

CREATE TABLE replica_extract (
	id INTEGER NOT NULL,
	file_name VARCHAR(100) NOT NULL,
	kind VARCHAR(8) NOT NULL,
	production_date DATE NOT NULL,
	previous_date DATE,
	sha256 VARCHAR(64) NOT NULL,
	persons INTEGER NOT NULL,
	written INTEGER NOT NULL,
	kept_newer INTEGER NOT NULL,
	applied_at DATETIME NOT NULL,
	CONSTRAINT pk_replica_extract PRIMARY KEY (id),
	CONSTRAINT uq_replica_extract_sha256 UNIQUE (sha256)
);

CREATE INDEX ix_replica_extract_production_date ON replica_extract (production_date);

CREATE TABLE replica_lookup (
	id INTEGER NOT NULL,
	looked_up_at DATETIME NOT NULL,
	system VARCHAR(36),
	user_uuid VARCHAR(36),
	transport VARCHAR(8) NOT NULL,
	pnr_hash VARCHAR(64) NOT NULL,
	result VARCHAR(80) NOT NULL,
	CONSTRAINT pk_replica_lookup PRIMARY KEY (id)
);

CREATE INDEX ix_replica_lookup_looked_up_at ON replica_lookup (looked_up_at);

CREATE INDEX ix_replica_lookup_pnr_hash ON replica_lookup (pnr_hash, looked_up_at);

CREATE TABLE subscriber (
	id INTEGER NOT NULL,
	uuid VARCHAR(36) NOT NULL,
	name VARCHAR(200) NOT NULL,
	serves VARCHAR(200),
	sftp_conn_id VARCHAR(250),
	remote_dir VARCHAR(500) NOT NULL,
	active BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	disabled_at DATETIME,
	delivery_mode VARCHAR(8) DEFAULT 'push' NOT NULL,
	pickup_account VARCHAR(64),
	registration TEXT,
	lookup_scope VARCHAR(16) DEFAULT 'all' NOT NULL,
	CONSTRAINT pk_subscriber PRIMARY KEY (id),
	CONSTRAINT uq_subscriber_uuid UNIQUE (uuid)
);

CREATE UNIQUE INDEX uq_subscriber_pickup_account ON subscriber (pickup_account);

CREATE TABLE certificate (
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	subject VARCHAR(500) NOT NULL,
	not_after DATETIME NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_certificate PRIMARY KEY (id),
	CONSTRAINT fk_certificate_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE INDEX ix_certificate_subscriber_id ON certificate (subscriber_id);

CREATE UNIQUE INDEX uq_certificate_current ON certificate (sha256) WHERE removed_at IS NULL;

CREATE TABLE credential (
	id INTEGER NOT NULL,
	token_id VARCHAR(32) NOT NULL,
	salt VARCHAR(64) NOT NULL,
	token_hash VARCHAR(128) NOT NULL,
	role VARCHAR(16) NOT NULL,
	subscriber_id INTEGER,
	label VARCHAR(200) NOT NULL,
	created_at DATETIME NOT NULL,
	revoked_at DATETIME,
	CONSTRAINT pk_credential PRIMARY KEY (id),
	CONSTRAINT uq_credential_token_id UNIQUE (token_id),
	CONSTRAINT fk_credential_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE TABLE delivery (
	id INTEGER NOT NULL,
	extract_run_id INTEGER NOT NULL,
	subscriber_uuid VARCHAR(36) NOT NULL,
	file_name VARCHAR(100) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	persons INTEGER NOT NULL,
	records INTEGER NOT NULL,
	target VARCHAR(800) NOT NULL,
	attempts INTEGER NOT NULL,
	outcome VARCHAR(32) NOT NULL,
	detail TEXT NOT NULL,
	updated_at DATETIME NOT NULL,
	delivered_at DATETIME,
	available_at DATETIME,
	picked_up_at DATETIME,
	removed_at DATETIME,
	removed_by VARCHAR(16),
	size_bytes BIGINT,
	window_wait_until DATETIME,
	CONSTRAINT pk_delivery PRIMARY KEY (id),
	CONSTRAINT uq_delivery_extract_run_id_subscriber_uuid UNIQUE (extract_run_id, subscriber_uuid),
	CONSTRAINT fk_delivery_extract_run_id_extract_run FOREIGN KEY(extract_run_id) REFERENCES extract_run (id)
);

CREATE TABLE delivery_setting (
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	delivery_mode VARCHAR(8) NOT NULL,
	pickup_account VARCHAR(64),
	sftp_conn_id VARCHAR(250),
	remote_dir VARCHAR(500) NOT NULL,
	valid_from DATETIME NOT NULL,
	valid_to DATETIME,
	CONSTRAINT pk_delivery_setting PRIMARY KEY (id),
	CONSTRAINT fk_delivery_setting_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE INDEX ix_delivery_setting_subscriber_id ON delivery_setting (subscriber_id, valid_from);

CREATE TABLE filter_age_range (
	start_age SMALLINT NOT NULL,
	end_age SMALLINT NOT NULL,
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_filter_age_range PRIMARY KEY (id),
	CONSTRAINT fk_filter_age_range_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE UNIQUE INDEX uq_filter_age_range_current ON filter_age_range (subscriber_id, start_age, end_age) WHERE removed_at IS NULL;

CREATE TABLE filter_change_code (
	code VARCHAR(3) NOT NULL,
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_filter_change_code PRIMARY KEY (id),
	CONSTRAINT fk_filter_change_code_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE INDEX ix_filter_change_code_code ON filter_change_code (code, subscriber_id);

CREATE UNIQUE INDEX uq_filter_change_code_current ON filter_change_code (subscriber_id, code) WHERE removed_at IS NULL;

CREATE TABLE filter_municipality (
	code VARCHAR(4) NOT NULL,
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_filter_municipality PRIMARY KEY (id),
	CONSTRAINT fk_filter_municipality_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE INDEX ix_filter_municipality_code ON filter_municipality (code, subscriber_id);

CREATE UNIQUE INDEX uq_filter_municipality_current ON filter_municipality (subscriber_id, code) WHERE removed_at IS NULL;

CREATE TABLE filter_none (
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_filter_none PRIMARY KEY (id),
	CONSTRAINT fk_filter_none_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE UNIQUE INDEX uq_filter_none_current ON filter_none (subscriber_id) WHERE removed_at IS NULL;

CREATE TABLE filter_pnr (
	pnr BIGINT NOT NULL,
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_filter_pnr PRIMARY KEY (id),
	CONSTRAINT fk_filter_pnr_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE INDEX ix_filter_pnr_pnr ON filter_pnr (pnr, subscriber_id, added_at, removed_at);

CREATE UNIQUE INDEX uq_filter_pnr_current ON filter_pnr (subscriber_id, pnr) WHERE removed_at IS NULL;

CREATE TABLE replica_person (
	pnr VARCHAR(10) NOT NULL,
	current_pnr VARCHAR(10),
	status SMALLINT NOT NULL,
	municipality SMALLINT,
	block BLOB NOT NULL,
	production_date DATE NOT NULL,
	extract_id INTEGER NOT NULL,
	CONSTRAINT pk_replica_person PRIMARY KEY (pnr),
	CONSTRAINT fk_replica_person_extract_id_replica_extract FOREIGN KEY(extract_id) REFERENCES replica_extract (id)
);

CREATE INDEX ix_replica_person_current_pnr ON replica_person (current_pnr);

CREATE TABLE service_agreement (
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	uuid VARCHAR(36) NOT NULL,
	service VARCHAR(16) DEFAULT 'sf6002' NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_service_agreement PRIMARY KEY (id),
	CONSTRAINT fk_service_agreement_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE INDEX ix_service_agreement_subscriber_id ON service_agreement (subscriber_id);

CREATE UNIQUE INDEX uq_service_agreement_current ON service_agreement (uuid) WHERE removed_at IS NULL;

CREATE TABLE ssh_key (
	id INTEGER NOT NULL,
	subscriber_id INTEGER NOT NULL,
	key_type VARCHAR(40) NOT NULL,
	key_data TEXT NOT NULL,
	fingerprint VARCHAR(64) NOT NULL,
	bits INTEGER NOT NULL,
	comment VARCHAR(200) NOT NULL,
	added_at DATETIME NOT NULL,
	removed_at DATETIME,
	CONSTRAINT pk_ssh_key PRIMARY KEY (id),
	CONSTRAINT fk_ssh_key_subscriber_id_subscriber FOREIGN KEY(subscriber_id) REFERENCES subscriber (id)
);

CREATE INDEX ix_ssh_key_subscriber_id ON ssh_key (subscriber_id);

CREATE UNIQUE INDEX uq_ssh_key_current ON ssh_key (fingerprint) WHERE removed_at IS NULL;
