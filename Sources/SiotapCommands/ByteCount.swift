import ArgumentParser

/// A size on the command line: `1000000`, `500MB`, `64MiB`, `2GB` (kB = 1,000 bytes, KiB = 1,024).
struct ByteCount: ExpressibleByArgument, Sendable, Equatable {
    var bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
    }

    init?(argument: String) {
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("kB", 1e3), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1), ("", 1),
        ]
        for (unit, scale) in units where argument.hasSuffix(unit) {
            guard let number = Double(argument.dropLast(unit.count)), number >= 0, number.isFinite, number * scale < 9e18 else { continue }
            bytes = Int(number * scale)
            return
        }
        return nil
    }

    static var defaultValueDescription: String { "bytes, or a number with kB, MB, GB, KiB, MiB or GiB" }
}
