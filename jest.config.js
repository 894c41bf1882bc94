/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }] },
  testTimeout: 30000,
  // Suites each spawn their own redis-server; two workers match the two cores we have.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/helpers/summaryReporter.js'],
  globalSetup: '<rootDir>/test/helpers/layers.globalSetup.js',
};
