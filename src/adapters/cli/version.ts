// The version otpgate reports.

export const VERSION = "0.1.0";
