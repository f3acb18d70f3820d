import ArgumentParser
import FaultInjection
import Foundation

/// `--fault`, `--faults` and `--seed`: the rules, checked when the command line is read, and the
/// plan the proxy runs.
struct FaultOptions: ParsableArguments {
    @Option(help: "Break the session on purpose with this rule (repeatable; see above).")
    var fault: [String] = []

    @Option(help: "A JSON file with an array of --fault rules.")
    var faults: String?

    @Option(help: "Seed for the p= draws of --fault, to repeat a run's choices (default: a random one, printed).")
    var seed: UInt64?

    func validate() throws {
        _ = try rules()
    }

    /// The plan, or nil without rules.
    func plan() throws -> FaultPlan? {
        let rules = try rules()
        return rules.isEmpty ? nil : FaultPlan(rules: rules, seed: seed ?? UInt64.random(in: 1...999_999))
    }

    private func rules() throws -> [FaultRule] {
        var specs = fault
        if let faults {
            guard let data = FileManager.default.contents(atPath: faults) else { throw ValidationError("--faults: cannot read \(faults)") }
            do throws(FaultRule.Invalid) { specs += try FaultPlan.specs(fromJSON: Array(data)) } catch {
                throw ValidationError("--faults \(faults): \(error)")
            }
        }
        if specs.isEmpty, seed != nil { throw ValidationError("--seed goes with --fault or --faults") }
        return try specs.map { spec in
            do throws(FaultRule.Invalid) { return try FaultRule(spec) } catch {
                throw ValidationError("--fault '\(spec)': \(error)")
            }
        }
    }
}
