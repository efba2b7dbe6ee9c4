//! Kubernetes resource quantities (`256Mi`, `0.3`, `300m`, `1e3`) compared exactly.
//!
//! The format is small and fully specified (apimachinery `resource.Quantity`); the only crate for
//! it (`k8s_quantity_parser` 0.1) rounds through floats, and a limit check must not round.

/// A quantity as an exact count of milli-units (bytes for memory, millicores for CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MilliQuantity(pub i128);

/// Why a quantity string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a Kubernetes quantity ({reason})")]
pub struct QuantityError {
    /// The text that failed.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl MilliQuantity {
    /// Parses a quantity; fractions below one milli-unit round up, as Kubernetes does.
    pub fn parse(input: &str) -> Result<MilliQuantity, QuantityError> {
        let error = |reason| QuantityError {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let (negative, text) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(error("expected a number"));
        }
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = format!("{whole}{fraction}");
        if digits.len() > 30 {
            return Err(error("too many digits"));
        }
        let mantissa: i128 = digits.parse().map_err(|_| error("expected a number"))?;
        // value = mantissa * 10^(-fraction_len) * multiplier; we want milli-units.
        let (binary, decimal_exponent): (i128, i32) = match suffix {
            "" => (1, 0),
            "n" => (1, -9),
            "u" => (1, -6),
            "m" => (1, -3),
            "k" => (1, 3),
            "M" => (1, 6),
            "G" => (1, 9),
            "T" => (1, 12),
            "P" => (1, 15),
            "E" => (1, 18),
            "Ki" => (1 << 10, 0),
            "Mi" => (1 << 20, 0),
            "Gi" => (1 << 30, 0),
            "Ti" => (1 << 40, 0),
            "Pi" => (1 << 50, 0),
            "Ei" => (1 << 60, 0),
            other => {
                let exponent = other
                    .strip_prefix(['e', 'E'])
                    .ok_or_else(|| error("unknown suffix"))?;
                let exponent: i32 = exponent.parse().map_err(|_| error("bad exponent"))?;
                if !(-30..=30).contains(&exponent) {
                    return Err(error("exponent out of range"));
                }
                (1, exponent)
            }
        };
        let fraction_len = i32::try_from(fraction.len()).map_err(|_| error("too many digits"))?;
        let exponent = decimal_exponent + 3 - fraction_len;
        let scaled = mantissa
            .checked_mul(binary)
            .ok_or_else(|| error("too large"))?;
        let value = if exponent >= 0 {
            scaled
                .checked_mul(10_i128.pow(exponent.unsigned_abs()))
                .ok_or_else(|| error("too large"))?
        } else {
            let divisor = 10_i128
                .checked_pow(exponent.unsigned_abs())
                .ok_or_else(|| error("too small"))?;
            // Round up to the next milli-unit, as resource.Quantity does.
            (scaled + divisor - 1) / divisor
        };
        Ok(MilliQuantity(if negative { -value } else { value }))
    }

    /// Milli-units from whole units (bytes or cores).
    pub fn from_units(units: i128) -> MilliQuantity {
        MilliQuantity(units * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(text: &str) -> i128 {
        MilliQuantity::parse(text).map(|q| q.0).unwrap_or(i128::MIN)
    }

    #[test]
    fn binary_and_decimal_suffixes_scale_exactly() {
        assert_eq!(milli("256Mi"), 256 * 1024 * 1024 * 1000);
        assert_eq!(milli("1Gi"), 1024 * 1024 * 1024 * 1000);
        assert_eq!(milli("128M"), 128_000_000 * 1000);
        assert_eq!(milli("1k"), 1_000_000);
    }

    #[test]
    fn cpu_forms_agree() {
        assert_eq!(milli("300m"), 300);
        assert_eq!(milli("0.3"), 300);
        assert_eq!(milli(".3"), 300);
        assert_eq!(milli("3e-1"), 300);
        assert_eq!(milli("1"), 1000);
    }

    #[test]
    fn sub_milli_fractions_round_up() {
        assert_eq!(milli("1n"), 1);
        assert_eq!(milli("0.0001"), 1);
    }

    #[test]
    fn garbage_is_rejected_with_the_input_named() {
        let error = MilliQuantity::parse("12 parsecs").err();
        assert_eq!(
            error.map(|e| e.to_string()),
            Some("\"12 parsecs\" is not a Kubernetes quantity (unknown suffix)".to_owned())
        );
        assert!(MilliQuantity::parse("").is_err());
        assert!(MilliQuantity::parse("Mi").is_err());
        assert!(MilliQuantity::parse("1.2.3").is_err());
    }
}
