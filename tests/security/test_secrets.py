"""Secret (detect-secrets) and PII detectors."""

from security import Kind, ScanConfig, scan

ONLY = ScanConfig(risky=False, licence_text=False, licence_index=False)


def found(text: str) -> list[tuple[str, int, int, int]]:
    return [(f.rule_id, f.start_line, f.start_col, f.end_col) for f in scan(text, config=ONLY)]


def test_aws_key_with_exact_range():
    text = 'x = 1\nAWS_ACCESS_KEY_ID = "AKIAZ3MSJV5WQ6KXNP4R"\n'
    assert found(text) == [("secret.AWSKeyDetector", 1, 21, 41)]


def test_token_and_password_literal():
    assert found('T = "ghp_R8x2mQ7vN4pL9sT1wY6zK3bH5cJ0dF2gA8eU"')[0][0] == "secret.GitHubTokenDetector"
    assert [r[0] for r in found('connect(user="a", password="Tr0ub4dor&3xyz")')] == ["secret.KeywordDetector"]


def test_high_entropy_needs_a_secret_name():
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert found(f'EMPTY_SHA256 = "{digest}"') == []
    assert found(f'api_key = "{digest}"')


def test_non_secrets_are_quiet():
    quiet = ['DB_PASSWORD = os.environ["DB_PASSWORD"]', 'API_KEY = "<your-api-key>"', 'token = "${TOKEN}"',
             'def login(user, password):\n    return check(user, password)',
             'ID = "123e4567-e89b-12d3-a456-426614174000"']
    for text in quiet:
        assert found(text) == [], text


def test_pii_positive_and_negative():
    text = 'A = "maria.lopez@acme-industries.de"\nB = "+44 20 7946 0958"\nC = "93.184.216.34"\n'
    assert [r[:2] for r in found(text)] == [("pii.email", 0), ("pii.phone", 1), ("pii.ipv4", 2)]
    quiet = ('E = "user@example.com"\nH = "127.0.0.1"\nB = "0.0.0.0"\nP = "192.168.1.1"\n'
             '__version__ = "2.0.10.1"\nV = "2.0.0.1"\nR = "git@github.com:o/r.git"\nD = "2024-01-15"\n')
    assert found(quiet) == []


def test_kinds():
    kinds = {f.kind for f in scan('k = "AKIAZ3MSJV5WQ6KXNP4R"  # bob@acme-corp.io', config=ONLY)}
    assert kinds == {Kind.SECRET, Kind.PII}
