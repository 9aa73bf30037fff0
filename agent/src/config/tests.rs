use super::*;

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["skein-agent"];
    argv.extend_from_slice(args);
    Config::load(
        Args::try_parse_from(argv).map_err(|e| ConfigError::Invalid {
            key: "argv".into(),
            origin: "test".into(),
            message: e.to_string(),
        })?,
    )
}

fn key_of(r: Result<Config, ConfigError>) -> String {
    match r {
        Err(ConfigError::Invalid { key, .. }) => key,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn defaults_match_the_design() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.otlp_grpc_addr.to_string(), "127.0.0.1:4317");
    assert_eq!(c.otlp_http_addr.to_string(), "127.0.0.1:4318");
    assert_eq!(c.admin_addr.to_string(), "127.0.0.1:13133");
    assert_eq!(c.collector, "http://127.0.0.1:16686");
    assert_eq!(c.collector_otlp, "http://127.0.0.1:4317");
    assert_eq!(c.buffer_max_bytes, 256 << 20);
    assert_eq!(c.batch_timeout, Duration::from_millis(200));
    assert_eq!(c.buffer_fsync_interval, Duration::from_secs(1));
    assert_eq!(c.compression, Compression::Gzip);
    assert!(c.heartbeat.is_none());
}

#[test]
fn compression_from_flag_env_style_value_and_file() {
    assert_eq!(
        parse(&["--compression", "zstd"]).unwrap().compression,
        Compression::Zstd
    );
    assert!(parse(&["--compression", "brotli"]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "compression = \"none\"\n").unwrap();
    let c = parse(&["--config", path.to_str().unwrap()]).unwrap();
    assert_eq!(c.compression, Compression::None);
}

#[test]
fn buffer_fsync_interval_zero_means_every_ack() {
    let c = parse(&["--buffer-fsync-interval", "0s"]).unwrap();
    assert_eq!(c.buffer_fsync_interval, Duration::ZERO);
    assert_eq!(
        key_of(parse(&["--buffer-fsync-interval", "2m"])),
        "buffer_fsync_interval"
    );
}

#[test]
fn heartbeat_settings_and_derived_otlp_url() {
    let c = parse(&[
        "--collector",
        "http://collector.svc:16686/",
        "--service",
        "shop",
        "--health-url",
        "http://127.0.0.1:8080/health",
        "--ttl",
        "20s",
        "--heartbeat-interval",
        "5s",
        "--healthy-after",
        "3",
    ])
    .unwrap();
    assert_eq!(c.collector, "http://collector.svc:16686");
    assert_eq!(c.collector_otlp, "http://collector.svc:4317");
    let hb = c.heartbeat.unwrap();
    assert_eq!(hb.service, "shop");
    assert_eq!(hb.ttl, Duration::from_secs(20));
    assert_eq!(hb.interval, Duration::from_secs(5));
    assert_eq!(hb.healthy_after, 3);
    assert_eq!(
        hb.check,
        HealthCheck::Url("http://127.0.0.1:8080/health".into())
    );
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(key_of(parse(&["--admin-addr", "nope"])), "admin_addr");
    assert_eq!(key_of(parse(&["--collector", "ftp://x"])), "collector");
    assert_eq!(
        key_of(parse(&["--buffer-max-bytes", "12 parsecs"])),
        "buffer_max_bytes"
    );
    assert_eq!(key_of(parse(&["--batch-timeout", "soon"])), "batch_timeout");
    assert_eq!(
        key_of(parse(&["--multiline-start", "(["])),
        "multiline_start"
    );
    assert_eq!(key_of(parse(&["--tail", "[x"])), "tail");
    assert_eq!(
        key_of(parse(&[
            "--service",
            "a",
            "--ttl",
            "5s",
            "--heartbeat-interval",
            "5s"
        ])),
        "heartbeat_interval"
    );
    assert_eq!(key_of(parse(&["--health-tcp", "127.0.0.1:1"])), "service");
    assert_eq!(
        key_of(parse(&[
            "--service",
            "a",
            "--health-tcp",
            "x:1",
            "--health-cmd",
            "true"
        ])),
        "health_url"
    );
    assert_eq!(
        key_of(parse(&["--collector", "https://c:16686"])),
        "collector_ca"
    );
}

#[test]
fn toml_file_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        "service = \"shop\"\nbuffer_max_bytes = \"1MiB\"\ntail = [\"/var/log/*.log\"]\nbatch_size = 100\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let c = parse(&["--config", p, "--batch-size", "7"]).unwrap();
    assert_eq!(c.buffer_max_bytes, 1 << 20);
    assert_eq!(c.batch_size, 7, "flags win over the file");
    assert_eq!(c.tail, vec!["/var/log/*.log".to_string()]);
    assert_eq!(c.heartbeat.unwrap().service, "shop");

    std::fs::write(&path, "colector = \"http://x\"\n").unwrap();
    match parse(&["--config", p]) {
        Err(ConfigError::File { message, .. }) => {
            assert!(message.contains("colector"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, "batch_timeout = \"forever\"\n").unwrap();
    match parse(&["--config", p]) {
        Err(ConfigError::Invalid { key, origin, .. }) => {
            assert_eq!(key, "batch_timeout");
            assert!(origin.ends_with("agent.toml"));
        }
        other => panic!("{other:?}"),
    }
}
