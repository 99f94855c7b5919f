// SPDX-License-Identifier: Apache-2.0
// Users of TwoStepCore see HashAlgorithm (part of OTPParameters) without importing TwoStepCrypto.
@_exported import enum TwoStepCrypto.HashAlgorithm
