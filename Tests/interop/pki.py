"""Certificates the TLS tests make for their servers (the `cryptography` package): a CA, and
leaves it signs, good or bad."""
import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


def name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(directory, label):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(label)).issuer_name(name(label)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    path = directory / f"{label}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, path


def make_leaf(directory, label, ca, *, san, expired=False):
    """A leaf signed by `ca`, for `san` (one name or a list)."""
    sans = san if isinstance(san, list) else [san]
    ca_cert, ca_key, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = (NOW - datetime.timedelta(days=10), NOW - datetime.timedelta(days=1)) if expired else \
        (NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=10))
    cert = (x509.CertificateBuilder().subject_name(name(label)).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


LOCAL = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
LOCALHOST = x509.DNSName("localhost")
