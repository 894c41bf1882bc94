/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }],
    // sip.js 0.21 ships ESM only; the SIP.js test phones need it as CommonJS under jest.
    'node_modules/sip\\.js/.+\\.js$': ['ts-jest', { isolatedModules: true, tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!sip\\.js/)'],
  testTimeout: 30000,
  // Suites each spawn their own redis-server; two workers match the two cores we have.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/helpers/summaryReporter.js'],
  globalSetup: '<rootDir>/test/helpers/layers.globalSetup.js',
};
