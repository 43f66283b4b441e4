"""The defect zoo's table: every catalog defect, at a size its spec must catch, mapped to the
plan test that must fail and a substring its failure message must contain (the measurement
that names the cause).

Cell numbers are chosen to exist on every reference profile (the 4S board has cells 1..4).
A new catalog defect without an entry here fails ``test_every_catalog_defect_has_a_catching_test``.
"""

from __future__ import annotations

# spec -> (plan file, test function, substring of the failure message)
CAUGHT: dict[str, tuple[str, str, str]] = {
    # hardware
    "adc_offset:cell=3,mv=8": ("test_sampling_accuracy.py", "test_sampling_accuracy", "cell03_error_mv"),
    "adc_gain:cell=3,ppm=3000": ("test_sampling_accuracy.py", "test_sampling_accuracy", "cell03_error_mv"),
    "adc_tempco:cell=3,uv_per_c=300": ("test_sampling_accuracy.py", "test_sampling_accuracy_over_temperature",
                                       "cell03_error_mv"),
    "adc_noise:mv_rms=6": ("test_noise_immunity.py", "test_sampling_noise", "noise_error95_mv"),
    "cell_swap:a=2,b=4": ("test_channel_mapping.py", "test_cell_mapping", "cell02_reported_on_cell = 4"),
    "bleed_current:ma=20": ("test_bleed_timing.py", "test_bleed_current", "bleed_current_ma"),
    "bleed_current:ma=80": ("test_bleed_timing.py", "test_bleed_current", "bleed_current_ma"),
    "bleed_stuck:cell=3": ("test_bleed_timing.py", "test_bleed_current", "cell03_idle_current_excess_ma"),
    "bleed_dead:cell=3": ("test_bleed_timing.py", "test_bleed_current", "cell03_bleed_current_ma"),
    # firmware
    "hvc_threshold:mv=20": ("test_hvc.py", "test_hvc_threshold", "hvc_trip_error_mv"),
    "hvc_delay:s=1": ("test_hvc.py", "test_hvc_latency", "hvc_latency_s"),
    "hvc_hysteresis:mv=100": ("test_hvc.py", "test_hvc_recovery", "hvc_hysteresis_mv"),
    "hvc_flag_missing": ("test_hvc.py", "test_hvc_flag", "hvc_flag_vs_fet_mismatches"),
    "lvc_threshold:mv=20": ("test_lvc.py", "test_lvc_threshold", "lvc_trip_error_mv"),
    "balance_start_delta:mv=60": ("test_bleed_timing.py", "test_balancing_start", "bleed_start_latency_s"),
    "balance_start_delta:mv=15": ("test_bleed_timing.py", "test_balancing_start", "channels_balancing_below_start_delta"),
    "balance_stop_delta:mv=25": ("test_bleed_timing.py", "test_balancing_stop", "samples_not_bleeding_above_stop_delta"),
    "balance_mid_soc": ("test_bleed_timing.py", "test_no_balancing_on_plateau", "channels_balancing_on_plateau"),
    "balance_during_sampling": ("test_bleed_timing.py", "test_balancing_pauses_for_measurement",
                                "error_while_bleeding_mv"),
    "balance_adjacent": ("test_bleed_timing.py", "test_no_adjacent_channels", "adjacent_pairs_balancing_link"),
    "balance_chatter": ("test_noise_immunity.py", "test_balancing_noise_immunity", "balancing_toggles_per_min"),
    "no_derating": ("test_derating.py", "test_derating", "derating_duty_error"),
    "derating_late:c=10": ("test_derating.py", "test_derating", "derating_duty_error"),
    "no_temp_compensation": ("test_temp_compensation.py", "test_temperature_compensation",
                             "hot_channels_balancing_below_min_cell_v"),
}

# spec -> (plan file, test function): well inside spec, the test must pass
WITHIN_SPEC: dict[str, tuple[str, str]] = {
    "adc_offset:cell=3,mv=1": ("test_sampling_accuracy.py", "test_sampling_accuracy"),
    "adc_noise:mv_rms=0.5": ("test_noise_immunity.py", "test_sampling_noise"),
    "hvc_delay:s=0.1": ("test_hvc.py", "test_hvc_latency"),
    "hvc_threshold:mv=3": ("test_hvc.py", "test_hvc_threshold"),
    "bleed_current:ma=45": ("test_bleed_timing.py", "test_bleed_current"),
    "derating_late:c=1": ("test_derating.py", "test_derating"),
}

# spec -> (plan file, test function, run verdict): a board that does not identify itself. Its
# tests are judged as usual, but the run's verdict is the identity verdict (exit 4) and the
# report makes no statement of conformity (rig/identity.py; tests/e2e/test_evidence_identity.py).
IDENTITY: dict[str, tuple[str, str, str]] = {
    "no_identity": ("test_channel_mapping.py", "test_cell_mapping", "UNIDENTIFIED"),
}

PROFILES = ("reference-16s-lfp", "reference-32s-lfp", "reference-4s-lfp-uart")

# Vendor boards (rig/sim/vendors): each made other choices than the reference board and
# states them in its profile; it must pass the plans on its own profile.
VENDOR_PROFILES = ("northwind-nw16c", "kestrel-ks8", "fjord-fj12", "gannet-gn24")

# (profile, spec, plan file, test function, substring of the failure message): a vendor
# board breaking its own declared behaviour (a faulty variant), caught naming the cause.
VENDOR_CAUGHT: tuple[tuple[str, str, str, str, str], ...] = (
    # declared charge-only, balances at rest too
    ("northwind-nw16c", "balance_any_state", "test_bleed_timing.py", "test_balancing_states", "channels_balancing_in_rest"),
    # declared rest + float only, balances under full charge too
    ("fjord-fj12", "balance_any_state", "test_bleed_timing.py", "test_balancing_states", "channels_balancing_in_charge"),
    # declared stepwise curve to zero at 48 °C, never goes below 30 %
    ("northwind-nw16c", "derating_floor:duty=0.3", "test_derating.py", "test_derating", "bleed_current_past_derating_zero_ma"),
    # declared 10 s HVC lockout, releases after 4 s
    ("kestrel-ks8", "lockout_short:s=6", "test_hvc.py", "test_hvc_recovery", "hvc_recovery_s"),
    # declared hysteresis + 5 s lockout, the lockout 3 s short
    ("gannet-gn24", "lockout_short:s=3", "test_hvc.py", "test_hvc_recovery", "hvc_recovery_s"),
    # declared LVC latched until the load is removed, releases by hysteresis with the load on
    ("kestrel-ks8", "latch_release_early", "test_lvc.py", "test_lvc_recovery", "lvc_released_with_charger_connected"),
    # declared 10 mV reporting steps, reports in 20 mV steps
    ("fjord-fj12", "report_resolution:mv=20", "test_sampling_accuracy.py", "test_reporting_resolution", "reported_step_mv"),
)


def defect_name(spec: str) -> str:
    return spec.split(":", 1)[0]
