import ArgumentParser
import Foundation
import SocketIOProtocol
import TLSCertificates

/// `siotap ca`: the local certificate authority the proxy signs its TLS certificates with.
struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Make, show and export siotap's local certificate authority.",
        discussion: """
            The CA is a P-256 key and a self-signed certificate valid ten years, named \
            "siotap local CA <host>", kept in --dir (default $SIOTAP_HOME/ca, else ~/.siotap/ca): \
            ca.pem, and ca-key.pem readable by you only. Trust ca.pem in the clients you debug \
            (a browser, an OS store, python's SSL_CERT_FILE, node's NODE_EXTRA_CA_CERTS).

            Exit codes: 0 done; 1 the CA exists already (init), is missing or unreadable, or the \
            directory cannot be written; 2 wrong arguments.

            Examples:
              siotap ca init
              siotap ca show --json
              siotap ca export > siotap-ca.pem
              siotap ca export --der > siotap-ca.cer
            """,
        subcommands: [Init.self, Show.self, Export.self]
    )

    struct Location: ParsableArguments {
        @Option(help: "The CA's directory (default: $SIOTAP_HOME/ca, else ~/.siotap/ca).")
        var dir: String?

        var directory: String { dir ?? LocalCA.defaultDirectory(environment: CommandIO.current.environment) }
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Make the CA. An existing one is never replaced.",
            discussion: "Exit codes: 0 made; 1 a CA is already there, or the directory cannot be written; 2 wrong arguments."
        )
        @OptionGroup var location: Location

        func run() async throws {
            let host = ProcessInfo.processInfo.hostName
            let ca: LocalCA
            do { ca = try LocalCA.create(in: location.directory, hostName: host) } catch { throw CommandFailure(error.description) }
            let fingerprint = (try? ca.fingerprintSHA256()) ?? "?"
            CommandIO.current.write("made \(ca.subject) in \(location.directory)\nSHA-256 fingerprint \(fingerprint)\n")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print the CA's subject, fingerprint and validity.",
            discussion: "Exit codes: 0 shown; 1 no CA there, or it cannot be read; 2 wrong arguments."
        )
        @OptionGroup var location: Location
        @Flag(help: "Print one JSON object.")
        var json = false

        func run() async throws {
            let ca: LocalCA
            let fingerprint: String
            do {
                ca = try LocalCA.load(from: location.directory)
                fingerprint = try ca.fingerprintSHA256()
            } catch { throw CommandFailure(error.description) }
            let notBefore = RFC3339.format(secondsSince1970: ca.notValidBefore.timeIntervalSince1970, fractionDigits: 0)
            let notAfter = RFC3339.format(secondsSince1970: ca.notValidAfter.timeIntervalSince1970, fractionDigits: 0)
            let io = CommandIO.current
            if json {
                let object = JSONValue.object([
                    "subject": .string(ca.subject),
                    "sha256_fingerprint": .string(fingerprint),
                    "not_before": .string(notBefore),
                    "not_after": .string(notAfter),
                    "directory": .string(location.directory),
                ])
                io.write(object.jsonText + "\n")
            } else {
                io.write("""
                    subject      \(ca.subject)
                    SHA-256      \(fingerprint)
                    valid        \(notBefore) to \(notAfter)
                    directory    \(location.directory)

                    """)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Print the CA certificate (PEM, or DER with --der); never the key.",
            discussion: "Exit codes: 0 printed; 1 no CA there, or it cannot be read; 2 wrong arguments."
        )
        @OptionGroup var location: Location
        @Flag(help: "DER (binary) instead of PEM.")
        var der = false

        func run() async throws {
            do {
                let ca = try LocalCA.load(from: location.directory)
                if der {
                    CommandIO.current.writeBytes(try ca.certificateDER())
                } else {
                    CommandIO.current.write(try ca.certificatePEM() + "\n")
                }
            } catch { throw CommandFailure(error.description) }
        }
    }
}
