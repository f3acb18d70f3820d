import ArgumentParser
import FaultInjection
import Foundation

/// `--fault`, `--faults` and `--seed`, read into the plan the proxy runs.
enum FaultOptions {
    static func plan(rules: [String], file: String?, seed: UInt64?) throws -> FaultPlan? {
        var specs = rules
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("--faults: cannot read \(file)") }
            do throws(FaultRule.Invalid) { specs += try FaultPlan.specs(fromJSON: Array(data)) } catch {
                throw ValidationError("--faults \(file): \(error)")
            }
        }
        guard !specs.isEmpty else {
            if seed != nil { throw ValidationError("--seed goes with --fault or --faults") }
            return nil
        }
        var parsed: [FaultRule] = []
        for spec in specs {
            do throws(FaultRule.Invalid) { parsed.append(try FaultRule(spec)) } catch {
                throw ValidationError("--fault '\(spec)': \(error)")
            }
        }
        return FaultPlan(rules: parsed, seed: seed ?? UInt64.random(in: 1...999_999))
    }
}
